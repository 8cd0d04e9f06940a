from django.urls import path

from annotation.views import browse, labelling, people, queue, rubric, studies, uploads

app_name = "annotation"
urlpatterns = [
    path("", studies.studies, name="studies"),
    path("studies/new/", studies.new_study, name="new-study"),
    path("studies/markdown-preview/", studies.markdown_preview, name="markdown-preview"),
    path("studies/<slug:slug>/", studies.study, name="study"),
    path("studies/<slug:slug>/settings/", studies.study_settings, name="settings"),
    path("studies/<slug:slug>/clone/", studies.clone, name="clone"),
    path("studies/<slug:slug>/archive/", studies.archive, name="archive"),
    path("studies/<slug:slug>/status/", studies.change_status, name="status"),
    path("studies/<slug:slug>/rubric/", rubric.rubric, name="rubric"),
    path("studies/<slug:slug>/rubric/preview/", rubric.preview, name="rubric-preview"),
    path("studies/<slug:slug>/people/", people.people_page, name="people"),
    path("invite/<str:token>/", people.invitation, name="invitation"),
    path("s/<slug:slug>/join", labelling.join, name="join"),
    path("s/<slug:slug>/label/", labelling.label, name="label"),
    # An item id may hold any character, "/" too.
    path("s/<slug:slug>/label/<path:external_id>/", labelling.revise, name="revise"),
    path("s/<slug:slug>/done/", labelling.done, name="done"),
    path("s/<slug:slug>/queue/", queue.queue, name="queue"),
    path("s/<slug:slug>/items/<path:external_id>/history/", queue.history, name="history"),
    path("s/<slug:slug>/items/<path:external_id>/gold/", queue.promote, name="promote"),
    path("studies/<slug:slug>/final-labels.csv", queue.final_labels_csv, name="final-labels"),
    path("studies/<slug:slug>/upload/", uploads.upload, name="upload"),
    path("studies/<slug:slug>/uploads/<int:pk>/", uploads.upload_status, name="upload-status"),
    path("studies/<slug:slug>/items/", browse.items, name="items"),
    path("studies/<slug:slug>/items/<path:external_id>/", browse.item, name="item"),
]
