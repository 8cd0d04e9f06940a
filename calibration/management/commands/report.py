import io
import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string

from annotation.models import Study
from calibration.reports import REFERENCES, build_report, report_csv, report_table

FORMATS = ("json", "html", "csv", "parquet")


class Command(BaseCommand):
    help = "Build a study's calibration report: every question, judge biases and rankings."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--format", choices=FORMATS, default="json")
        parser.add_argument("--out", default="-", help="file to write (default: stdout)")
        parser.add_argument(
            "--bootstrap",
            type=int,
            default=1000,
            help="bootstrap resamples for the 95%% intervals (0: none)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--reference",
            choices=REFERENCES,
            default="majority",
            help="what judges are scored against: the human majority (default) or the final "
            "labels, adjudicated by experts",
        )
        parser.add_argument(
            "--rubric-version",
            type=int,
            metavar="N",
            help="analyse only the labels written against version N of the study's rubric, "
            "with its questions (default: every label, with the latest version's questions)",
        )
        parser.add_argument(
            "--family",
            action="append",
            default=[],
            metavar="JUDGE=FAMILY",
            help="a judge's model family, for self-preference (repeatable), e.g. gpt-4o=gpt",
        )

    def handle(self, *args, slug, format, out, bootstrap, seed, family, reference, **options):
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug {slug!r}", returncode=2)
        families = dict(_family(f) for f in family)
        version = None
        if options["rubric_version"] is not None:
            version = study.rubric.versions.filter(number=options["rubric_version"]).first()
            if version is None:
                numbers = list(study.rubric.versions.values_list("number", flat=True))
                raise CommandError(
                    f"study {slug!r} has no rubric version {options['rubric_version']}; "
                    f"it has {', '.join(map(str, numbers))}",
                    returncode=2,
                )
        entry = build_report(
            study,
            bootstrap=bootstrap,
            seed=seed,
            families=families,
            reference=reference,
            rubric_version=version,
        )
        body = _render(entry, study, format)
        if out == "-":
            if isinstance(body, bytes):
                sys.stdout.buffer.write(body)
            else:
                self.stdout.write(body, ending="")
            return
        try:
            Path(out).write_bytes(body if isinstance(body, bytes) else body.encode())
        except OSError as e:
            raise CommandError(f"{out}: {e.strerror}") from None
        self.stderr.write(f"Wrote the {format} report of {slug!r} to {out}.")


def _family(text):
    judge, _, family = text.partition("=")
    if not judge or not family:
        raise CommandError(f"--family takes JUDGE=FAMILY, not {text!r}", returncode=2)
    return judge, family


def _render(entry, study, fmt):
    report = entry["report"]
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return report_csv(report)
    if fmt == "parquet":
        buffer = io.BytesIO()
        report_table(report).to_parquet(buffer, index=False)
        return buffer.getvalue()
    css = (Path(settings.BASE_DIR) / "static" / "css" / "quorum.css").read_text()
    return render_to_string(
        "calibration/report_document.html", {"study": study, "css": css, **entry}
    )
