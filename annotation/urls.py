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
]
