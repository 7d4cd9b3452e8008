"""A ticket's check-in code as a QR code, by segno (a maintained ISO/IEC 18004 encoder)."""

import io

import segno

# Module size and quiet zone in SVG user units; the frontends scale the image to their layout.
SCALE = 4
BORDER = 4  # the quiet zone the standard asks for, in modules


def ticket_qr(code: str) -> segno.QRCode:
    """The QR code of a ticket code (level M at least; segno raises it when the size allows)."""
    return segno.make_qr(code, error="m")


def ticket_svg(code: str) -> bytes:
    """The ticket code's QR code as a standalone SVG document, titled with the code."""
    out = io.BytesIO()
    ticket_qr(code).save(
        out, kind="svg", scale=SCALE, border=BORDER, xmldecl=False, svgclass="qr",
        title=f"QR code of ticket {code}",
    )  # fmt: skip
    return out.getvalue()
