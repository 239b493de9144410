"""The tests' dev-auth issuer (its own key, a JWKS server on a free port, a minter for
good and deliberately bad tokens). It lives in flokraft_devstack.issuer, which the
benchmarks use too; the tests import it here."""

from __future__ import annotations

from flokraft_devstack.issuer import TestIssuer, running_issuer

__all__ = ["TestIssuer", "running_issuer"]
