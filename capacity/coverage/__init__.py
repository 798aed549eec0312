"""Coverage: the 45-minute norm live ("witte vlekken"), and what-if when an SEH stops (model in `regions.coverage`)."""
