"""`advisor estimate`, `advisor models`, `advisor gpus`: memory, time and cost of one job."""
