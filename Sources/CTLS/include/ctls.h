#ifndef CTLS_H
#define CTLS_H

#include <stddef.h>

/// The egress proxy's TLS, on OpenSSL: a per-session certificate authority that mints a
/// certificate for each host whose requests carry a brokered secret, the server side of the
/// command's TLS connection, and the checked client side of the connection to the real host, each
/// over memory buffers so that an event loop moves the bytes.
typedef struct ctls_authority ctls_authority;
typedef struct ctls_session ctls_session;

/// A new authority: a fresh P-256 key that never leaves this process and a CA certificate,
/// valid for a week, whose name constraints permit only `permitted` (a comma-separated list in
/// OpenSSL's nameConstraints syntax, e.g. "permitted;DNS:registry.example,permitted;IP:10.0.0.1/255.255.255.255"; NULL for none).
/// `upstream_ca_file` (or NULL) is trusted for real hosts beside the system's store.
/// Returns NULL with a reason in `error`.
ctls_authority *ctls_authority_new(const char *permitted, const char *upstream_ca_file, char *error, size_t error_size);
void ctls_authority_free(ctls_authority *authority);
/// The CA certificate in PEM, NUL-terminated, owned by the authority.
const char *ctls_authority_pem(const ctls_authority *authority);

/// The client side of TLS to the real `host` (a DNS name or an IP address): its certificate must
/// chain to a trusted root and name `host`. The session runs over memory: the caller feeds it what
/// the socket read and sends what `ctls_drain` gives.
ctls_session *ctls_client_new(ctls_authority *authority, const char *host, char *error, size_t error_size);
/// The server side of the command's TLS, with a certificate for `host` that the authority signs; the
/// SNI the command sends, if any, must be `host`.
ctls_session *ctls_server_new(ctls_authority *authority, const char *host, char *error, size_t error_size);

/// Hands the session ciphertext the socket read; 1 on success.
int ctls_feed(ctls_session *session, const void *bytes, size_t size);
/// Ciphertext waiting to go to the socket, in bytes.
size_t ctls_outgoing(ctls_session *session);
/// Moves up to `size` bytes of waiting ciphertext into `buffer`; how many.
size_t ctls_drain(ctls_session *session, void *buffer, size_t size);
/// One step of the handshake: 1 done, 0 more input needed, -1 failed (the reason in `error`).
int ctls_handshake(ctls_session *session, char *error, size_t error_size);
/// Plaintext read (> 0), 0 when none is ready yet, -1 at the peer's close_notify, -2 on an error.
long ctls_read(ctls_session *session, void *buffer, size_t size);
/// Encrypts all of `size` bytes for `ctls_drain`; 1 on success.
int ctls_write(ctls_session *session, const void *bytes, size_t size);
/// Queues close_notify: the peer reads the end of the stream.
void ctls_close_write(ctls_session *session);
void ctls_free(ctls_session *session);

#endif
