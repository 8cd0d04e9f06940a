from django.urls import path

from judging import api

urlpatterns = [
    path("judges/", api.JudgeList.as_view(), name="api-judges"),
    path("judges/<int:pk>/", api.JudgeDetail.as_view(), name="api-judge"),
    path("studies/<slug:slug>/judge-runs/", api.JudgeRunList.as_view(), name="api-judge-runs"),
    path(
        "studies/<slug:slug>/judge-runs/estimate/",
        api.JudgeRunEstimate.as_view(),
        name="api-judge-run-estimate",
    ),
    path(
        "studies/<slug:slug>/judge-runs/<int:pk>/",
        api.JudgeRunDetail.as_view(),
        name="api-judge-run",
    ),
    path(
        "studies/<slug:slug>/judge-runs/<int:pk>/cancel/",
        api.JudgeRunCancel.as_view(),
        name="api-judge-run-cancel",
    ),
    path(
        "studies/<slug:slug>/judge-templates/",
        api.PromptTemplateList.as_view(),
        name="api-judge-templates",
    ),
    path(
        "studies/<slug:slug>/judge-templates/<str:question_type>/",
        api.PromptTemplateDetail.as_view(),
        name="api-judge-template",
    ),
]
