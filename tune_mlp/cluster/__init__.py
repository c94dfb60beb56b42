"""A search on a Ray cluster: submission as a Ray job (``job``) and the job's driver on the head (``driver``)."""
