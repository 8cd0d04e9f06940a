from django.apps import AppConfig


class CalibrationConfig(AppConfig):
    name = "calibration"
    verbose_name = "Calibration"

    def ready(self):
        from annotation.signals import labels_settled, labels_written
        from calibration.report_cache import forget_labels_state
        from calibration.tasks import route_on_commit

        labels_settled.connect(route_on_commit, dispatch_uid="calibration.route_on_commit")
        labels_written.connect(forget_labels_state, dispatch_uid="calibration.labels_state")
