from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect


@login_required
def overview(request):
    # Placeholder until the overview lands: the landing page is the vehicle list.
    return redirect("vehicle-list")
