"""Validate an SSH public key pasted by an engineer."""

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

ALLOWED_TYPES = {
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
}
MIN_RSA_BITS = 3072
# OpenSSH, PEM and PuTTY private key files all carry one of these markers.
PRIVATE_KEY_MARKERS = ("PRIVATE KEY", "PuTTY-User-Key-File")
PRIVATE_KEY_PASTED = (
    "that is a private key, not the .pub file: treat it as exposed and stop using it; "
    "make a new key pair (ssh-keygen -t ed25519) and paste only the new .pub file"
)


def is_private_key(text: str) -> bool:
    return any(marker in (text or "") for marker in PRIVATE_KEY_MARKERS)


def normalize_public_key(text: str) -> str:
    """The key as `type base64`, or ValueError saying what is wrong with it."""
    text = (text or "").strip()
    if is_private_key(text):
        raise ValueError(PRIVATE_KEY_PASTED)
    parts = text.split()
    if len(parts) < 2 or parts[0] not in ALLOWED_TYPES:
        raise ValueError(
            f"not an SSH public key (expected one of {', '.join(sorted(ALLOWED_TYPES))})"
        )
    key_text = f"{parts[0]} {parts[1]}"
    try:
        key = load_ssh_public_key(key_text.encode())
    except (ValueError, TypeError):
        raise ValueError(
            "the SSH public key is damaged (its base64 part does not decode)"
        ) from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA keys need at least {MIN_RSA_BITS} bits; ed25519 is better")
    return key_text
