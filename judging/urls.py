from django.urls import path

from judging import views

app_name = "judging"
urlpatterns = [
    path("studies/<slug:slug>/judge-runs/estimate/", views.estimate, name="estimate"),
    path("studies/<slug:slug>/judge-runs/start/", views.start, name="start"),
    path("studies/<slug:slug>/judge-runs/<int:pk>/", views.judge_run, name="run"),
    path("studies/<slug:slug>/judge-runs/<int:pk>/cancel/", views.cancel, name="cancel"),
]
