"""What every domain app shares and none owns: the service error (`errors`) and the vendor's
rate-limit budget shared by every worker (`models.VendorBudget`, `ratelimit`). Imports no app of ours."""
