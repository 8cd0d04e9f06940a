from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self):
        from annotation.models import Item, forget_item_count
        from annotation.signals import labels_written

        labels_written.connect(forget_item_count, sender=Item, dispatch_uid="annotation.items")
