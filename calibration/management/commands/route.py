import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Study
from annotation.queue_rules import RULES, check_rules
from calibration.queueing import route


class Command(BaseCommand):
    help = (
        "Send a study's items whose labels disagree to the expert queue, by the study's "
        "routing rules (or those of --rules), and count the items each rule routes."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--dry-run", action="store_true", help="count only: nothing is queued or changed"
        )
        parser.add_argument(
            "--rules", help="a JSON file of routing rules to use instead of the study's"
        )
        parser.add_argument("--format", choices=("text", "json"), default="text")

    def handle(self, *args, slug, dry_run, rules, format, **options):
        study = Study.objects.filter(slug=slug).select_related("rubric").first()
        if study is None:
            raise CommandError(f"no study with slug {slug!r}", returncode=2)
        outcome = route(study, rules=_rules(rules), dry_run=dry_run)
        if format == "json":
            self.stdout.write(json.dumps(outcome))
            return
        done = "would be routed (dry run)" if dry_run else "routed"
        self.stdout.write(f"{slug}: {outcome['routed']} items {done}")
        for rule in RULES:
            self.stdout.write(f"  {rule:<20} {outcome['rules'][rule]}")


def _rules(path):
    if path is None:
        return None
    try:
        return check_rules(json.loads(Path(path).read_text(encoding="utf-8-sig")))
    except OSError as e:
        raise CommandError(f"{path}: {e.strerror}", returncode=2) from None
    except ValueError as e:  # bad JSON, or rules that are not rules
        raise CommandError(f"{path}: {e}", returncode=2) from None
