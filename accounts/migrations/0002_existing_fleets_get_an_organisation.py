"""Fleets imported before organisations existed go to one organisation, and their users with it.

Without this an upgrade would hide every fleet from everyone but superusers. Each existing
user who is not a superuser becomes a member, with the role their old permissions gave:
dangerous commands → approver, commands → operator, callbacks → admin, else viewer.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    Fleet = apps.get_model("vehicles", "Fleet")
    if not Fleet.objects.filter(organisation__isnull=True).exists():
        return
    Organisation = apps.get_model("accounts", "Organisation")
    Membership = apps.get_model("accounts", "Membership")
    User = apps.get_model("auth", "User")
    org, _ = Organisation.objects.get_or_create(slug="default", defaults={"name": "Default organisation"})
    Fleet.objects.filter(organisation__isnull=True).update(organisation=org)
    for user in User.objects.filter(is_superuser=False, is_active=True).prefetch_related("user_permissions", "groups__permissions"):
        codenames = {p.codename for p in user.user_permissions.all()} | {p.codename for g in user.groups.all() for p in g.permissions.all()}
        if "change_callback" in codenames or "add_callback" in codenames:
            role = "admin"
        elif "request_dangerous_remote" in codenames:
            role = "approver"
        elif "request_remote" in codenames:
            role = "operator"
        else:
            role = "viewer"
        Membership.objects.get_or_create(user=user, organisation=org, defaults={"role": role})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("vehicles", "0004_fleet_organisation"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
