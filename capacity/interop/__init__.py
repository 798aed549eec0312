"""Standards in and out (EDXL-HAVE, FHIR SANER, CSV): routes and the rules they share.

The format adapters live in `feeds/`; each turns its document into canonical reports, which
are applied here together, through the same validation and the same atomic script."""
