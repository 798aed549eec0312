"""Real-time emergency capacity sharing for the Dutch ROAZ regions."""
