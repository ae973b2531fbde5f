"""Jobs that ``cnnlab run NAME`` starts."""
