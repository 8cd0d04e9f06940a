import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from annotation.models import Study
from annotation.rubrics import RubricError


class Command(BaseCommand):
    help = "Create a study with the rubric in a JSON file."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--rubric", required=True, help="rubric JSON file")
        parser.add_argument("--name", help="study name (default: the rubric's name)")
        parser.add_argument(
            "--overlap", type=int, default=3, help="distinct human labels per item (default 3)"
        )
        parser.add_argument(
            "--items-per-annotator",
            type=int,
            default=0,
            help="items each annotator labels before the completion code (default 0: all)",
        )

    def handle(self, *args, slug, rubric, name, overlap, items_per_annotator, **options):
        if overlap < 1:
            raise CommandError("--overlap must be at least 1")
        if items_per_annotator < 0:
            raise CommandError("--items-per-annotator must be 0 (no limit) or more")
        try:
            with open(rubric, encoding="utf-8-sig") as f:
                definition = json.load(f)
        except OSError as e:
            raise CommandError(f"{rubric}: {e.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CommandError(f"{rubric}: is not valid JSON: {e}") from None
        if Study.objects.filter(slug=slug).exists():
            raise CommandError(f"a study with slug {slug!r} already exists")
        try:
            study = Study.objects.create_with_rubric(
                slug=slug,
                name=name,
                rubric=definition,
                overlap=overlap,
                items_per_annotator=items_per_annotator,
            )
        except RubricError as e:
            raise CommandError(f"{rubric}: {e}") from None
        except ValidationError as e:
            raise CommandError(f"{slug!r} is not a valid slug: {' '.join(e.messages)}") from None
        except IntegrityError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(
            f"Created study {study.slug!r} ({study.name}) with "
            f"{len(study.rubric_version.parsed.questions)} questions."
        )
