#include "ctls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct ctls_authority {
    EVP_PKEY *key;
    X509 *certificate;
    /// One key for every minted leaf: the session's certificates differ only in their names.
    EVP_PKEY *leaf_key;
    char *pem;
    SSL_CTX *server;
    SSL_CTX *client;
};

struct ctls_session {
    SSL *ssl;
    /// The host a server session's certificate names, which the command's SNI must match.
    char *host;
};

/// `what`, then OpenSSL's first queued error (or the verification failure), into `error`.
static void fail(char *error, size_t size, const char *what, long verify) {
    char detail[256] = "";
    int number = errno;
    unsigned long code = ERR_get_error();
    if (verify != X509_V_OK) {
        snprintf(detail, sizeof detail, "%s", X509_verify_cert_error_string(verify));
    } else if (code != 0) {
        ERR_error_string_n(code, detail, sizeof detail);
    } else if (number != 0) {
        snprintf(detail, sizeof detail, "%s", strerror(number));
    } else {
        snprintf(detail, sizeof detail, "the peer closed the connection during the handshake");
    }
    snprintf(error, size, "%s%s%s", what, detail[0] ? ": " : "", detail);
    ERR_clear_error();
}

static int extend(X509 *certificate, X509 *issuer, int nid, const char *value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, certificate, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, &context, nid, value);
    if (extension == NULL) return 0;
    int added = X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
    return added;
}

/// An unsigned certificate for `key` named `common_name` (no subject when NULL), issued by
/// `issuer` (itself when NULL).
static X509 *certify(EVP_PKEY *key, const char *common_name, X509 *issuer) {
    X509 *certificate = X509_new();
    if (certificate == NULL) return NULL;
    unsigned char serial[16];
    BIGNUM *number = NULL;
    int ok = X509_set_version(certificate, 2) && RAND_bytes(serial, sizeof serial) == 1;
    if (ok) {
        serial[0] &= 0x7f;
        number = BN_bin2bn(serial, sizeof serial, NULL);
        ok = number != NULL && BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate)) != NULL;
    }
    BN_free(number);
    // An hour back for clocks that differ a little; a week ahead outlives any session.
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) && X509_gmtime_adj(X509_getm_notAfter(certificate), 7 * 24 * 3600);
    ok = ok && X509_set_pubkey(certificate, key);
    X509_NAME *name = X509_get_subject_name(certificate);
    ok = ok && (common_name == NULL || X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0));
    ok = ok && X509_set_issuer_name(certificate, issuer ? X509_get_subject_name(issuer) : name);
    if (!ok) {
        X509_free(certificate);
        return NULL;
    }
    return certificate;
}

static int sign(X509 *certificate, EVP_PKEY *key) { return X509_sign(certificate, key, EVP_sha256()) > 0; }

static SSL_CTX *context(const SSL_METHOD *method) {
    SSL_CTX *made = SSL_CTX_new(method);
    if (made == NULL) return NULL;
    SSL_CTX_set_min_proto_version(made, TLS1_2_VERSION);
    // A peer that closes without close_notify has ended its stream, as HTTP/1.1 servers do.
    SSL_CTX_set_options(made, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(made, SSL_MODE_AUTO_RETRY);
    return made;
}

ctls_authority *ctls_authority_new(const char *permitted, const char *upstream_ca_file, char *error, size_t error_size) {
    ctls_authority *authority = calloc(1, sizeof *authority);
    if (authority == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    authority->key = EVP_EC_gen("P-256");
    authority->leaf_key = EVP_EC_gen("P-256");
    if (authority->key == NULL || authority->leaf_key == NULL) goto failed;
    authority->certificate = certify(authority->key, "toolhost egress proxy (this session only)", NULL);
    if (authority->certificate == NULL) goto failed;
    X509 *ca = authority->certificate;
    if (!extend(ca, ca, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") || !extend(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign")
        || !extend(ca, ca, NID_subject_key_identifier, "hash") || (permitted != NULL && !extend(ca, ca, NID_name_constraints, permitted))
        || !sign(ca, authority->key))
        goto failed;
    BIO *memory = BIO_new(BIO_s_mem());
    if (memory == NULL || !PEM_write_bio_X509(memory, ca)) {
        BIO_free(memory);
        goto failed;
    }
    char *data = NULL;
    long length = BIO_get_mem_data(memory, &data);
    authority->pem = calloc(1, (size_t)length + 1);
    if (authority->pem != NULL) memcpy(authority->pem, data, (size_t)length);
    BIO_free(memory);
    if (authority->pem == NULL) goto failed;

    authority->server = context(TLS_server_method());
    authority->client = context(TLS_client_method());
    if (authority->server == NULL || authority->client == NULL) goto failed;
    SSL_CTX_set_verify(authority->client, SSL_VERIFY_PEER, NULL);
    if (!SSL_CTX_set_default_verify_paths(authority->client)) goto failed;
    if (upstream_ca_file != NULL && !SSL_CTX_load_verify_locations(authority->client, upstream_ca_file, NULL)) {
        fail(error, error_size, "the egress proxy cannot read the CA file in SSL_CERT_FILE", X509_V_OK);
        ctls_authority_free(authority);
        return NULL;
    }
    return authority;

failed:
    fail(error, error_size, "the egress proxy cannot make its certificate authority", X509_V_OK);
    ctls_authority_free(authority);
    return NULL;
}

void ctls_authority_free(ctls_authority *authority) {
    if (authority == NULL) return;
    EVP_PKEY_free(authority->key);
    EVP_PKEY_free(authority->leaf_key);
    X509_free(authority->certificate);
    free(authority->pem);
    SSL_CTX_free(authority->server);
    SSL_CTX_free(authority->client);
    free(authority);
}

const char *ctls_authority_pem(const ctls_authority *authority) { return authority->pem; }

static int is_address(const char *host) {
    ASN1_OCTET_STRING *address = a2i_IPADDRESS(host);
    ASN1_OCTET_STRING_free(address);
    return address != NULL;
}

/// A session over two memory BIOs: the caller moves ciphertext between them and its socket.
static ctls_session *session(SSL *ssl, const char *host) {
    ctls_session *made = calloc(1, sizeof *made);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (made == NULL || in == NULL || out == NULL || (made->host = strdup(host)) == NULL) {
        BIO_free(in);
        BIO_free(out);
        if (made != NULL) free(made->host);
        free(made);
        SSL_free(ssl);
        return NULL;
    }
    // An empty input BIO asks for more instead of reporting the end of the stream.
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl, in, out);
    made->ssl = ssl;
    return made;
}

ctls_session *ctls_client_new(ctls_authority *authority, const char *host, char *error, size_t error_size) {
    SSL *ssl = SSL_new(authority->client);
    int named = ssl != NULL;
    if (named && is_address(host)) {
        named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else if (named) {
        named = SSL_set_tlsext_host_name(ssl, host) && SSL_set1_host(ssl, host);
    }
    ctls_session *made = named ? session(ssl, host) : NULL;
    if (made == NULL) {
        if (!named) SSL_free(ssl);
        fail(error, error_size, "TLS to the host cannot start", X509_V_OK);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return made;
}

ctls_session *ctls_server_new(ctls_authority *authority, const char *host, char *error, size_t error_size) {
    // No subject, only a critical subjectAltName (RFC 5280 4.2.1.6): GnuTLS checks a common name
    // against the CA's DNS constraints even when the name is an address.
    X509 *leaf = certify(authority->leaf_key, NULL, authority->certificate);
    char names[300];
    snprintf(names, sizeof names, "critical,%s:%s", is_address(host) ? "IP" : "DNS", host);
    if (leaf == NULL || !extend(leaf, authority->certificate, NID_basic_constraints, "critical,CA:FALSE")
        || !extend(leaf, authority->certificate, NID_key_usage, "critical,digitalSignature")
        || !extend(leaf, authority->certificate, NID_ext_key_usage, "serverAuth")
        || !extend(leaf, authority->certificate, NID_authority_key_identifier, "keyid:always")
        || !extend(leaf, authority->certificate, NID_subject_alt_name, names) || !sign(leaf, authority->key)) {
        X509_free(leaf);
        fail(error, error_size, "the egress proxy cannot make a certificate for the host", X509_V_OK);
        return NULL;
    }
    SSL *ssl = SSL_new(authority->server);
    int ready = ssl != NULL && SSL_use_certificate(ssl, leaf) && SSL_use_PrivateKey(ssl, authority->leaf_key);
    X509_free(leaf);
    ctls_session *made = ready ? session(ssl, host) : NULL;
    if (made == NULL) {
        if (!ready) SSL_free(ssl);
        fail(error, error_size, "the egress proxy cannot start the command's TLS", X509_V_OK);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return made;
}

int ctls_feed(ctls_session *session, const void *bytes, size_t size) {
    size_t written = 0;
    return size == 0 || (BIO_write_ex(SSL_get_rbio(session->ssl), bytes, size, &written) == 1 && written == size);
}

size_t ctls_outgoing(ctls_session *session) { return BIO_ctrl_pending(SSL_get_wbio(session->ssl)); }

size_t ctls_drain(ctls_session *session, void *buffer, size_t size) {
    size_t count = 0;
    if (BIO_read_ex(SSL_get_wbio(session->ssl), buffer, size, &count) != 1) return 0;
    return count;
}

int ctls_handshake(ctls_session *session, char *error, size_t error_size) {
    errno = 0;
    int result = SSL_do_handshake(session->ssl);
    if (result != 1) {
        int reason = SSL_get_error(session->ssl, result);
        if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return 0;
        }
        if (SSL_is_server(session->ssl)) {
            fail(error, error_size, "the command's TLS handshake failed (does it trust the session's CA in SSL_CERT_FILE?)", X509_V_OK);
        } else {
            fail(error, error_size, "TLS to the host failed", SSL_get_verify_result(session->ssl));
        }
        return -1;
    }
    // The server name the command's TLS asks for, when it sends one, must be the tunnel's host:
    // the real value goes to one host only, whatever a shared front end would route by.
    const char *asked = SSL_is_server(session->ssl) ? SSL_get_servername(session->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    if (asked != NULL && strcasecmp(asked, session->host) != 0) {
        snprintf(error, error_size, "the command's TLS names another host (SNI) than its CONNECT");
        return -1;
    }
    return 1;
}

long ctls_read(ctls_session *session, void *buffer, size_t size) {
    size_t count = 0;
    if (SSL_read_ex(session->ssl, buffer, size, &count) == 1) return (long)count;
    int reason = SSL_get_error(session->ssl, 0);
    ERR_clear_error();
    if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) return 0;
    return reason == SSL_ERROR_ZERO_RETURN ? -1 : -2;
}

int ctls_write(ctls_session *session, const void *bytes, size_t size) {
    size_t written = 0;
    // A memory BIO takes everything: one call writes all of it or fails.
    int ok = size == 0 || (SSL_write_ex(session->ssl, bytes, size, &written) == 1 && written == size);
    if (!ok) ERR_clear_error();
    return ok;
}

void ctls_close_write(ctls_session *session) {
    SSL_shutdown(session->ssl);
    ERR_clear_error();
}

void ctls_free(ctls_session *session) {
    if (session == NULL) return;
    SSL_free(session->ssl);
    free(session->host);
    free(session);
}
