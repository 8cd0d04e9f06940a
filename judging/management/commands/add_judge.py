from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from judging.models import Judge


class Command(BaseCommand):
    help = "Add (or update) an LLM judge behind an OpenAI-compatible endpoint."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--base-url",
            required=True,
            help="e.g. http://127.0.0.1:8080/v1 or https://api.openai.com/v1",
        )
        parser.add_argument("--model", required=True)
        parser.add_argument(
            "--api-key-env",
            default="",
            help="environment variable that holds the API key; one of JUDGE_KEY_ENV_NAMES",
        )
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--rpm", type=int, help="requests-per-minute limit")
        parser.add_argument("--family", default="", help="model family, e.g. gpt or llama")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--max-tokens", type=int, default=512)

    def handle(
        self,
        *args,
        name,
        base_url,
        model,
        api_key_env,
        concurrency,
        rpm,
        family,
        temperature,
        max_tokens,
        **options,
    ):
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        judge = Judge.objects.filter(name=name).first() or Judge(name=name)
        judge.base_url, judge.model, judge.api_key_env = base_url, model, api_key_env
        judge.max_concurrency, judge.requests_per_minute, judge.family = concurrency, rpm, family
        judge.temperature, judge.max_tokens = temperature, max_tokens
        try:
            judge.full_clean(exclude=["rater"])
        except ValidationError as e:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in e.message_dict.items())
            raise CommandError(problems) from None
        judge.save()
        self.stdout.write(f"Judge {name!r}: {model} at {base_url}.")
