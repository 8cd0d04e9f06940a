from django.urls import path

from annotation import api

urlpatterns = [
    path("studies/", api.StudyList.as_view(), name="api-studies"),
    path("studies/<slug:slug>/", api.StudyDetail.as_view(), name="api-study"),
    path("studies/<slug:slug>/items/", api.ItemList.as_view(), name="api-items"),
    path(
        "studies/<slug:slug>/final-labels/",
        api.FinalLabelList.as_view(),
        name="api-final-labels",
    ),
]
