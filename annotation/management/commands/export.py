import sys

from django.core.management.base import BaseCommand, CommandError

from annotation.exports import FORMATS, export_study, export_study_to_path
from annotation.management.commands._study import study_or_error


class Command(BaseCommand):
    help = (
        "Export a study: its labels as the long CSV, its items as JSONL, or (--final) one final "
        "label per item and question with its provenance."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--format", choices=FORMATS, required=True)
        parser.add_argument("--out", default="-", help="file to write (default: stdout)")
        parser.add_argument(
            "--final",
            action="store_true",
            help="the final labels (csv only): item,question,value,provenance,n_labels,"
            "agreement,routed,decided_by,decided_at,note",
        )

    def handle(self, *args, slug, format, out, final, **options):
        study = study_or_error(slug)
        if final and format != "csv":
            raise CommandError("--final exports csv only: use --format csv")
        if out == "-":
            sys.stdout.reconfigure(newline="")
            export_study(study, format, sys.stdout, final=final)
            return
        try:
            n = export_study_to_path(study, format, out, final=final)
        except OSError as e:
            raise CommandError(f"{out}: {e.strerror}") from None
        kind = "final labels" if final else "label rows" if format == "csv" else "items"
        self.stderr.write(f"Wrote {n} {kind} to {out}.")
