"""Partners' own identity providers (OpenID Connect), through which their people,
third parties in Airlock, sign in. Configured in `AIRLOCK_PARTNER_OIDC` (JSON):
one entry per partner, keyed by a short name, naming the company whose third
parties it signs in. The client secret is read from the environment variable
the entry names (or its `_FILE`), never from the JSON."""

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lib.secrets import MissingSecret, read_secret

Url = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)]
PARTNER_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class PartnerIdP(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The company of the third parties it signs in, as invitations name it.
    company: Annotated[str, Field(min_length=1, max_length=200)]
    # The `iss` of its ID tokens, exactly; accounts are bound to issuer and subject.
    issuer: Url
    client_id: Annotated[str, Field(min_length=1, max_length=500)]
    client_secret_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,99}$")]
    authorization_endpoint: Url
    token_endpoint: Url
    # Where its signing keys are (RS256, ES256); HS256 signs with the client secret.
    jwks_endpoint: Url | None = None
    sign_algo: Literal["RS256", "ES256", "HS256"] = "RS256"
    scopes: str = "openid"

    @model_validator(mode="after")
    def _keys_for_public_key_algorithms(self) -> "PartnerIdP":
        if self.sign_algo != "HS256" and not self.jwks_endpoint:
            raise ValueError(f"{self.sign_algo} needs jwks_endpoint (the partner's signing keys)")
        return self


# Letters of other scripts drawn like Latin ones (Unicode TR39's commonest): a
# sponsor typing Acme with a Cyrillic capital A must not make an Acme person someone
# their company's identity provider does not vouch for.
LOOK_ALIKES = str.maketrans(
    "аеорсухіјѕԁԛԝһӏԍαβεικνορτυχ",
    "aeopcyxijsdqwhlgabeiknoptux",
)


def company_skeleton(company: str) -> str:
    """What a company name looks like, for telling whether two are the same:
    compatibility forms folded (full-width letters), invisible characters and
    accents dropped, look-alike letters of other scripts read as Latin, case and
    spacing ignored."""
    decomposed = unicodedata.normalize("NFKD", company)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in {"Mn", "Cf", "Cc"})
    return " ".join(kept.casefold().translate(LOOK_ALIKES).split())


class PartnerConfigError(ValueError):
    """What is wrong with AIRLOCK_PARTNER_OIDC, said plainly."""


def parse_partners(raw, *, staff_issuer: str = "") -> dict[str, PartnerIdP]:
    """The partners' identity providers, checked. A partner may not share the staff
    identity provider's issuer (its subjects would be the staff's), nor another
    partner's issuer or company."""
    if not isinstance(raw, dict):
        raise PartnerConfigError("AIRLOCK_PARTNER_OIDC: a JSON object of partner name -> settings")
    partners = {}
    for key, settings in raw.items():
        if not PARTNER_KEY.fullmatch(key):
            raise PartnerConfigError(
                f"AIRLOCK_PARTNER_OIDC: {key!r} is not a partner name (a-z, 0-9, -; 40 at most)"
            )
        try:
            partners[key] = PartnerIdP.model_validate(settings)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
            )
            raise PartnerConfigError(f"AIRLOCK_PARTNER_OIDC[{key}]: {problems}") from None
        try:
            read_secret(partners[key].client_secret_env)
        except MissingSecret as exc:
            raise PartnerConfigError(f"AIRLOCK_PARTNER_OIDC[{key}]: {exc}") from None
    issuers = [p.issuer for p in partners.values()]
    companies = [company_skeleton(p.company) for p in partners.values()]
    if staff_issuer and staff_issuer in issuers:
        raise PartnerConfigError(
            "AIRLOCK_PARTNER_OIDC: a partner's issuer is the staff identity provider's"
        )
    if len(set(issuers)) < len(issuers) or len(set(companies)) < len(companies):
        raise PartnerConfigError("AIRLOCK_PARTNER_OIDC: one issuer and one company per partner")
    return partners
