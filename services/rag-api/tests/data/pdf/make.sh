#!/usr/bin/env bash
# How the PDFs beside this script were made (they are committed; run this
# only to remake them). Debian packages: libreoffice-writer-nogui,
# fonts-dejavu-core, groff, ghostscript, qpdf.
set -euo pipefail
cd "$(dirname "$0")"
# Three pages from LibreOffice Writer: embedded TrueType subsets (DejaVu).
soffice --headless --infilter="HTML (StarWriter)" \
    --convert-to pdf:writer_pdf_Export lake-house.html
# Two pages from groff: the standard Times fonts, not embedded.
groff -ms -Tpdf notes.ms > notes.pdf
# The same pages as pictures only, as a scanner makes them: no text layer.
gs -q -dNOPAUSE -dBATCH -sDEVICE=pdfimage8 -r40 -sOutputFile=scanned.pdf notes.pdf
# The same pages locked with a user password (AES-256).
qpdf --encrypt secret secret 256 -- notes.pdf locked.pdf
