from django.urls import path

from annotation.views import labelling, queue, studies

app_name = "annotation"
urlpatterns = [
    path("", studies.studies, name="studies"),
    path("studies/<slug:slug>/", studies.study, name="study"),
    path("s/<slug:slug>/join", labelling.join, name="join"),
    path("s/<slug:slug>/label/", labelling.label, name="label"),
    # An item id may hold any character, "/" too.
    path("s/<slug:slug>/label/<path:external_id>/", labelling.revise, name="revise"),
    path("s/<slug:slug>/done/", labelling.done, name="done"),
    path("s/<slug:slug>/queue/", queue.queue, name="queue"),
    path("s/<slug:slug>/items/<path:external_id>/history/", queue.history, name="history"),
    path("s/<slug:slug>/items/<path:external_id>/gold/", queue.promote, name="promote"),
    path("studies/<slug:slug>/final-labels.csv", queue.final_labels_csv, name="final-labels"),
]
