"""Output documents of task steps: checked (size, extension and magic bytes) and stored content-addressed.

A file lives at `<instance>/attachments/ab/cd/<sha256>`: the client's name never touches the file system,
so a hostile name cannot escape the folder; it is only kept (sanitised) for display and downloads.
The same document uploaded twice is stored once.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import AlurError

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_NAME_CHARS = 200

# extension -> content type. Office formats are zip files: told apart by what is inside.
ALLOWED_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text",
}
_SHA_RE = re.compile(r"[0-9a-f]{64}")


class AttachmentError(AlurError):
    """The upload was refused; the message says why in Bahasa Indonesia (the English twin in `.en`)."""

    def __init__(self, message: str, en: str):
        super().__init__(message)
        self.en = en


@dataclass(frozen=True)
class CheckedFile:
    data: bytes
    sha256: str
    size: int
    content_type: str
    name: str  # sanitised display name


def allowed_extensions() -> list[str]:
    return sorted({"pdf", "jpg", "png", "docx", "xlsx", "odt"})


def check_name(raw_name: str | None) -> str:
    """The display name for an uploaded file. Names carrying a path (`../x`, `a/b`, `C:\\x`) are refused
    outright: a browser never sends one, so it is a tampered request."""
    name = (raw_name or "").strip()
    if not name:
        raise AttachmentError("nama berkas kosong", "the file has no name")
    if "/" in name or "\\" in name or ".." in name or ":" in name or "\x00" in name:
        raise AttachmentError("nama berkas tidak boleh berisi folder atau '..'",
                              "the file name must not contain folders or '..'")
    name = unicodedata.normalize("NFC", name)
    # Keep letters, digits and a few marks; anything else (quotes, controls, ;) becomes '_'.
    cleaned = "".join(ch if (ch.isalnum() or ch in " ._-()") else "_" for ch in name)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    if not cleaned or "." not in cleaned:
        raise AttachmentError("nama berkas harus punya ekstensi (mis. .pdf)",
                              "the file name needs an extension (e.g. .pdf)")
    stem, ext = cleaned.rsplit(".", 1)
    return f"{stem[:MAX_NAME_CHARS - len(ext) - 1]}.{ext.lower()}"


def _zip_names(data: bytes) -> set[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return set()


def _content_matches(ext: str, data: bytes) -> bool:
    if ext == "pdf":
        return data.startswith(b"%PDF-")
    if ext in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if ext == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if not data.startswith(b"PK\x03\x04"):
        return False
    if ext == "odt":  # ODF puts an uncompressed `mimetype` entry first
        return data[30:38] == b"mimetype" and b"application/vnd.oasis.opendocument.text" in data[38:120]
    names = _zip_names(data)
    if ext == "docx":
        return "[Content_Types].xml" in names and any(n.startswith("word/") for n in names)
    if ext == "xlsx":
        return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)
    return False


def check_upload(raw_name: str | None, data: bytes, *, max_bytes: int = MAX_ATTACHMENT_BYTES) -> CheckedFile:
    """Refuse empty, oversized, unknown or disguised files (extension AND content must agree)."""
    name = check_name(raw_name)
    if not data:
        raise AttachmentError("berkas kosong", "the file is empty")
    if len(data) > max_bytes:
        mb = max_bytes // (1024 * 1024)
        raise AttachmentError(f"berkas terlalu besar (maksimal {mb} MB)", f"the file is too large (at most {mb} MB)")
    ext = name.rsplit(".", 1)[1]
    if ext not in ALLOWED_TYPES:
        allowed = ", ".join(allowed_extensions())
        raise AttachmentError(f"jenis berkas tidak diizinkan (boleh: {allowed})",
                              f"this kind of file is not allowed (allowed: {allowed})")
    if not _content_matches(ext, data):
        raise AttachmentError(f"isi berkas bukan {ext.upper()} yang sah", f"the content is not a valid {ext.upper()}")
    return CheckedFile(data, hashlib.sha256(data).hexdigest(), len(data), ALLOWED_TYPES[ext], name)


class AttachmentStore:
    """Files on disk under their sha256. Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        if not _SHA_RE.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, checked: CheckedFile) -> Path:
        path = self.path_for(checked.sha256)
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(checked.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def discard(self, sha256: str) -> None:
        """Remove a file nobody references any more (the caller checks the references)."""
        self.path_for(sha256).unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()
