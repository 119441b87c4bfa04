from django.urls import path

from . import views

urlpatterns = [
    path("", views.organisation_list, name="organisation-list"),
    # The person's own settings (two segments: no organisation slug can shadow it).
    path("me/time-zone/", views.time_zone, name="time-zone"),
    path("<slug:slug>/", views.organisation_detail, name="organisation-detail"),
    path("<slug:slug>/approvals/", views.approval_policy, name="approval-policy"),
    path("<slug:slug>/members/invite/", views.member_invite, name="member-invite"),
    path("<slug:slug>/members/<int:pk>/", views.member_edit, name="member-edit"),
    path("<slug:slug>/members/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("<slug:slug>/tokens/new/", views.token_issue, name="token-issue"),
    path("<slug:slug>/tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
]
