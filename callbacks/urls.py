from django.urls import path

from . import views

urlpatterns = [
    path("", views.callback_list, name="callback-list"),
    path("new/", views.callback_create, name="callback-create"),
    path("import/", views.callback_import, name="callback-import"),
    path("<int:pk>/edit/", views.callback_edit, name="callback-edit"),
    path("<int:pk>/status/", views.callback_status, name="callback-status"),
    path("<int:pk>/delete/", views.callback_delete, name="callback-delete"),
    path("<int:pk>/rotate/", views.callback_rotate, name="callback-rotate"),
    path("<int:pk>/check/", views.callback_check, name="callback-check"),
]
