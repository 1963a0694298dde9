#ifndef CTLS_H
#define CTLS_H

#include <stddef.h>

/// The egress proxy's TLS, on OpenSSL: a per-session certificate authority that mints a
/// certificate for each host whose requests carry a brokered secret, the server side of the
/// command's TLS connection, and the checked client side of the connection to the real host.
typedef struct ctls_authority ctls_authority;
typedef struct ctls_stream ctls_stream;

/// A new authority: a fresh P-256 key that never leaves this process and a CA certificate,
/// valid for a week, whose name constraints permit only `permitted` (a comma-separated list in
/// OpenSSL's nameConstraints syntax, e.g. "permitted;DNS:registry.example,permitted;IP:10.0.0.1/255.255.255.255"; NULL for none).
/// `upstream_ca_file` (or NULL) is trusted for real hosts beside the system's store.
/// Returns NULL with a reason in `error`.
ctls_authority *ctls_authority_new(const char *permitted, const char *upstream_ca_file, char *error, size_t error_size);
void ctls_authority_free(ctls_authority *authority);
/// The CA certificate in PEM, NUL-terminated, owned by the authority.
const char *ctls_authority_pem(const ctls_authority *authority);

/// The client side of TLS to the real `host` on the connected socket `fd`: the certificate must
/// chain to a trusted root and name `host` (a DNS name or an IP address).
ctls_stream *ctls_connect(ctls_authority *authority, int fd, const char *host, char *error, size_t error_size);
/// The server side of TLS on the connected socket `fd`, with a certificate for `host` that the authority signs.
ctls_stream *ctls_accept(ctls_authority *authority, int fd, const char *host, char *error, size_t error_size);

/// Bytes read (> 0), 0 at the end of the stream, < 0 on an error.
long ctls_read(ctls_stream *stream, void *buffer, size_t size);
/// 1 when all of `size` was written, 0 otherwise.
int ctls_write(ctls_stream *stream, const void *buffer, size_t size);
/// Bytes already decrypted and waiting, which poll() cannot see.
int ctls_pending(ctls_stream *stream);
/// Sends close_notify: the peer reads the end of the stream.
void ctls_close_write(ctls_stream *stream);
/// Frees the stream; the socket stays open (its owner closes it).
void ctls_free(ctls_stream *stream);

#endif
