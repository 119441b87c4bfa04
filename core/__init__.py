"""What every domain app shares and none owns: the service error. Imports no app of ours."""
