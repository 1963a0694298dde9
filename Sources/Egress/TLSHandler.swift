import CTLS
import NIOCore

/// TLS on a channel, through CTLS's memory-buffered OpenSSL sessions: ciphertext read from the
/// socket is fed in, plaintext goes on up the pipeline, and plaintext written comes out encrypted.
/// `established` completes when the handshake does, or fails with OpenSSL's reason.
final class TLSHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Why the handshake failed, in OpenSSL's words.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let established: EventLoopPromise<Void>
    private let session: OpaquePointer
    private var done = false
    private var ended = false
    /// Plaintext written before the handshake finished.
    private var waiting: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var scratch = [UInt8](repeating: 0, count: 16 << 10)

    /// - Parameter session: a `ctls_client_new` or `ctls_server_new` session, which the handler frees.
    init(session: OpaquePointer, established: EventLoopPromise<Void>) {
        self.session = session
        self.established = established
    }

    deinit { ctls_free(session) }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { advance(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        advance(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard bytes.withUnsafeReadableBytes({ ctls_feed(session, $0.baseAddress, $0.count) }) == 1 else {
            return abandon(context, "the egress proxy ran out of memory for TLS")
        }
        if !done { advance(context) }
        if done { deliver(context) }
        send(context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { established.fail(Failure(description: "the peer closed the connection during the TLS handshake")) }
        done = true
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        guard done else { return waiting.append((bytes, promise)) }
        encrypt(context, bytes, promise: promise)
    }

    /// Sends close_notify, once its bytes are out, before the socket closes.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard done, !ended, mode != .input else { return context.close(mode: mode, promise: promise) }
        ended = true
        ctls_close_write(session)
        let sent = context.eventLoop.makePromise(of: Void.self)
        send(context, promise: sent)
        sent.futureResult.assumeIsolated().whenComplete { _ in context.close(mode: mode, promise: promise) }
    }

    /// One step of the handshake; on success, the plaintext written meanwhile goes out.
    private func advance(_ context: ChannelHandlerContext) {
        var error = [CChar](repeating: 0, count: 512)
        switch ctls_handshake(session, &error, error.count) {
        case 1:
            done = true
            established.succeed()
            let queued = waiting
            waiting = []
            for (bytes, promise) in queued { encrypt(context, bytes, promise: promise) }
        case 0:
            break
        default:
            // The alert OpenSSL made goes out before the connection closes.
            send(context, promise: nil)
            return abandon(context, String(characters: error))
        }
        send(context, promise: nil)
    }

    private func abandon(_ context: ChannelHandlerContext, _ reason: String) {
        let failure = Failure(description: reason)
        if !done { established.fail(failure) }
        done = true
        ended = true
        for (_, promise) in waiting { promise?.fail(failure) }
        waiting = []
        context.close(promise: nil)
    }

    /// Passes on every byte of plaintext the session holds; close_notify reads as the input's end.
    private func deliver(_ context: ChannelHandlerContext) {
        while true {
            let count = ctls_read(session, &scratch, scratch.count)
            if count > 0 {
                context.fireChannelRead(wrapInboundOut(ByteBuffer(bytes: scratch[0..<count])))
            } else if count == 0 {
                return
            } else {
                if count == -2 { return abandon(context, "TLS broke off") }
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
                return
            }
        }
    }

    private func encrypt(_ context: ChannelHandlerContext, _ bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard bytes.withUnsafeReadableBytes({ ctls_write(session, $0.baseAddress, $0.count) }) == 1 else {
            promise?.fail(Failure(description: "TLS cannot encrypt"))
            return abandon(context, "TLS cannot encrypt")
        }
        send(context, promise: promise)
    }

    /// Writes and flushes the ciphertext the session has made; `promise` completes with the last of it.
    private func send(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        var out = context.channel.allocator.buffer(capacity: ctls_outgoing(session))
        while ctls_outgoing(session) > 0 {
            let count = ctls_drain(session, &scratch, scratch.count)
            guard count > 0 else { break }
            out.writeBytes(scratch[0..<count])
        }
        guard out.readableBytes > 0 else {
            promise?.succeed()
            return
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: promise)
    }
}
