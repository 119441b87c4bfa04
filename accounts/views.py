"""Organisation pages: members and partner tokens. Every change is one call to `services`.

An organisation the user is not a member of is not found (404), never forbidden; a member
without the admin role reads the members and gets 403 on every change.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import access, services
from .forms import ApprovalPolicyForm, InviteForm, MemberForm, OrganisationForm, TokenForm, apply_errors
from .models import Organisation, PartnerToken


def _organisation(request, slug) -> Organisation:
    return get_object_or_404(Organisation.objects.visible_to(request.user), slug=slug)


def _may_manage(request, org) -> bool:
    return access.access_of(request.user).may_in(access.MANAGE, org.pk)


def _require_manage(request, org) -> None:
    if not _may_manage(request, org):
        raise PermissionDenied(services.MANAGE_NEEDED)


@login_required
def organisation_list(request):
    organisations = list(Organisation.objects.visible_to(request.user))
    form = None
    if request.user.is_superuser:
        form = OrganisationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            org = services.create_organisation(**form.cleaned_data, by=request.user)
            messages.success(request, f"Organisation {org} created; you are its admin.")
            return redirect("organisation-detail", slug=org.slug)
    elif request.method == "POST":
        raise PermissionDenied("Only a superuser creates organisations.")
    elif len(organisations) == 1:
        return redirect("organisation-detail", slug=organisations[0].slug)
    return render(request, "accounts/organisation_list.html", {"organisations": organisations, "form": form})


def _render_detail(request, org, *, invite_form=None, token_form=None, policy_form=None):
    manage = _may_manage(request, org)
    fleets = org.fleets.all()
    tokens = PartnerToken.objects.visible_to(request.user).filter(organisation=org).select_related("user").prefetch_related("fleets")
    context = {
        "organisation": org,
        "manage": manage,
        "members": org.memberships.select_related("user").prefetch_related("fleets").order_by("user__username"),
        "tokens": tokens,
        "invite_form": invite_form or (InviteForm(fleets=fleets) if manage else None),
        "token_form": token_form or (TokenForm(fleets=fleets) if manage else None),
        "policy_form": policy_form or (ApprovalPolicyForm(initial=_policy(org)) if manage else None),
        "approvable": dict(Organisation.APPROVABLE),
    }
    return render(request, "accounts/organisation_detail.html", context)


@login_required
def organisation_detail(request, slug):
    return _render_detail(request, _organisation(request, slug))


def _policy(org) -> dict:
    return {"required_for": org.approval_required_for, "ttl_minutes": org.approval_ttl_minutes}


@login_required
@require_POST
def approval_policy(request, slug):
    org = _organisation(request, slug)
    _require_manage(request, org)
    form = ApprovalPolicyForm(request.POST)
    if form.is_valid():
        try:
            services.set_approval_policy(org=org, **form.cleaned_data, by=request.user)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"{org}: four-eyes approval updated.")
            return redirect("organisation-detail", slug=org.slug)
    return _render_detail(request, org, policy_form=form)


@login_required
@require_POST
def member_invite(request, slug):
    org = _organisation(request, slug)
    _require_manage(request, org)
    form = InviteForm(request.POST, fleets=org.fleets.all())
    if form.is_valid():
        try:
            membership = services.invite_member(org=org, **form.cleaned_data, by=request.user)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            invited = "" if membership.user.has_usable_password() else f" An e-mail to {membership.user.email} lets them set a password."
            messages.success(request, f"{membership.user} is now a member ({membership.get_role_display()}).{invited}")
            return redirect("organisation-detail", slug=org.slug)
    return _render_detail(request, org, invite_form=form)


@login_required
def member_edit(request, slug, pk):
    org = _organisation(request, slug)
    _require_manage(request, org)
    membership = get_object_or_404(org.memberships.select_related("user"), pk=pk)
    initial = {"role": membership.role, "fleets": list(membership.fleets.all())}
    form = MemberForm(request.POST or None, initial=initial, fleets=org.fleets.all())
    if request.method == "POST" and form.is_valid():
        try:
            services.change_member(membership=membership, role=form.cleaned_data["role"], fleets=form.cleaned_data.get("fleets") or (), by=request.user)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"{membership.user}: {membership.get_role_display()}.")
            return redirect("organisation-detail", slug=org.slug)
    return render(request, "accounts/member_form.html", {"organisation": org, "membership": membership, "form": form})


@login_required
@require_POST
def member_remove(request, slug, pk):
    org = _organisation(request, slug)
    _require_manage(request, org)
    membership = get_object_or_404(org.memberships.select_related("user"), pk=pk)
    try:
        services.remove_member(membership=membership, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{membership.user} is no longer a member of {org}.")
    return redirect("organisation-detail", slug=org.slug)


@never_cache  # the answer carries the key: no browser or proxy keeps a copy to show again
@login_required
@require_POST
def token_issue(request, slug):
    org = _organisation(request, slug)
    _require_manage(request, org)
    form = TokenForm(request.POST, fleets=org.fleets.all())
    if form.is_valid():
        data = form.cleaned_data
        try:
            token, key = services.issue_token(
                org=org, name=data["name"], scopes=data["scopes"], fleets=data.get("fleets") or (), expires_at=form.expires_at(), by=request.user
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            # Rendered straight into this answer: the key is in no session, message or log.
            example = request.build_absolute_uri(reverse("api-callback-list"))
            return render(request, "accounts/token_issued.html", {"organisation": org, "token": token, "key": key, "example_url": example})
    return _render_detail(request, org, token_form=form)


@login_required
def token_revoke(request, slug, pk):
    """GET asks to confirm, POST revokes. Others' tokens need the admin role; one's own never does."""
    org = _organisation(request, slug)
    if _may_manage(request, org):
        token = get_object_or_404(org.tokens.select_related("user"), pk=pk)
    else:
        token = org.tokens.filter(user=request.user, pk=pk).first()
        if token is None:
            raise PermissionDenied(services.MANAGE_NEEDED)
    if request.method != "POST":
        return render(request, "accounts/token_revoke.html", {"organisation": org, "token": token})
    if services.revoke_token(token=token, by=request.user):
        messages.success(request, f"{token} revoked: it is refused from now on.")
    else:
        messages.info(request, f"{token} was already revoked.")
    return redirect("organisation-detail", slug=org.slug)


@login_required
@never_cache
def time_zone(request):
    """The person's time zone: a page to choose it, and where static/js/timezone.js sends the
    browser's zone the first time (`auto=1`: kept only when none was chosen yet)."""
    from django.http import JsonResponse
    from django.utils import timezone

    from . import timezones

    if request.method == "POST":
        name = request.POST.get("time_zone", "")
        auto = request.POST.get("auto") == "1"
        if timezones.valid_zone(name) is None:
            if auto:
                return JsonResponse({"saved": False, "error": "unknown time zone"}, status=400)
            messages.error(request, f"“{name}” is not a time zone we know; pick one from the list.")
        else:
            saved = timezones.set_zone(request, name, only_if_unset=auto)
            if auto:
                return JsonResponse({"saved": saved, "time_zone": request.session.get(timezones.SESSION_KEY, "")})
            messages.success(request, f"Times are now shown in {name}.")
            return redirect(request.POST.get("next") or "time-zone")
    return render(
        request, "accounts/time_zone.html",
        {"zones": timezones.zone_names(), "current": request.time_zone, "chosen": request.time_zone_chosen, "now_dt": timezone.now()},
    )
