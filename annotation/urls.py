from django.urls import path

from annotation import views

app_name = "annotation"
urlpatterns = [
    path("", views.studies, name="studies"),
    path("studies/<slug:slug>/", views.study, name="study"),
    path("s/<slug:slug>/join", views.join, name="join"),
    path("s/<slug:slug>/label/", views.label, name="label"),
    # An item id may hold any character, "/" too.
    path("s/<slug:slug>/label/<path:external_id>/", views.revise, name="revise"),
    path("s/<slug:slug>/done/", views.done, name="done"),
    path("s/<slug:slug>/queue/", views.queue, name="queue"),
    path("s/<slug:slug>/items/<path:external_id>/history/", views.history, name="history"),
    path("s/<slug:slug>/items/<path:external_id>/gold/", views.promote, name="promote"),
    path("studies/<slug:slug>/final-labels.csv", views.final_labels_csv, name="final-labels"),
]
