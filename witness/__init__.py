"""A witness of the log (C2SP tlog-witness ``add-checkpoint``, SM2 cosignatures), run by an organisation
other than the log operator: ``provenance witness serve``. It talks to the gateway over HTTP only."""
