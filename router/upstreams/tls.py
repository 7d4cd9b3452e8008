"""The TLS context of every connection the router opens to regions and global_api."""

import ssl

from router.config import RouterSettings


def client_context(settings: RouterSettings) -> ssl.SSLContext:
    """Verify upstreams against the configured CA bundle (else the system's), names checked.

    With a client certificate configured, it is presented to upstreams that require one.
    """
    ca_file = settings.upstream_ca_file
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if settings.upstream_cert_file is not None:
        key_file = settings.upstream_key_file
        context.load_cert_chain(settings.upstream_cert_file, str(key_file) if key_file else None)
    return context
