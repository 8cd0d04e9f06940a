"""Background work of the annotation app, run by `celery worker`."""

from celery import shared_task

from annotation import uploads
from annotation.exports import export_study_to_path
from annotation.models import Study


@shared_task
def export_study(study_id, fmt, path):
    """Write a study export to a file; safe to retry, as the file is replaced whole."""
    return export_study_to_path(Study.objects.get(pk=study_id), fmt, path)


@shared_task(acks_late=True)
def import_upload(upload_id):
    """Import a file uploaded in the browser; a second delivery finds it claimed and stops."""
    uploads.run(upload_id)
