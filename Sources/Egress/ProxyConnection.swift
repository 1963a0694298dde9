import CTLS
import NIOCore
import NIOHTTP1
import NIOPosix

/// The command's side of one proxied connection: llhttp's reading of one request, the policy's
/// decision on it, and where its bytes go next. Outside a tunnel the request is a plain http one
/// (forwarded) or a CONNECT (spliced, or opened by the broker); inside a brokered tunnel it is the
/// one request whose dummy may be replaced, bound for the tunnel's host.
final class RequestStage: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart

    /// A brokered tunnel: its host, the secrets it may carry, and the TLS channel to the real host.
    struct Tunnel {
        let target: Authority
        let swaps: [EgressProxy.Swap]
        let upstream: any Channel
    }

    private enum State {
        case head
        /// Resolving or connecting: body parts wait here, with reading paused.
        case connecting([HTTPServerRequestPart])
        /// The head went on; body parts follow it until the request's end.
        case forwarding(upstream: any Channel, chunked: Bool, bodyDone: Bool)
        /// Refused, spliced, or handed to the broker: nothing more is read as HTTP here.
        case finished
    }

    private let proxy: EgressProxy
    private let tunnel: Tunnel?
    private var state = State.head
    private var deadline: Scheduled<Void>?

    init(proxy: EgressProxy, tunnel: Tunnel? = nil) {
        self.proxy = proxy
        self.tunnel = tunnel
    }

    /// The whole head (and, in a tunnel, the TLS handshake before it) must come within 30 seconds,
    /// however slowly it trickles in.
    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel, upstream = tunnel?.upstream
        deadline = context.eventLoop.scheduleTask(in: .seconds(30)) {
            channel.close(promise: nil)
            upstream?.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

    /// Something before the stage refused the request: nothing more is read here.
    func refused() {
        deadline?.cancel()
        state = .finished
        tunnel?.upstream.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { take(unwrapInboundIn(data), context) }

    private func take(_ part: HTTPServerRequestPart, _ context: ChannelHandlerContext) {
        switch state {
        case .head:
            guard case .head(let parsed) = part else { return }
            deadline?.cancel()
            begin(context, parsed)
        case .connecting(var held):
            held.append(part)
            state = .connecting(held)
        case .forwarding(let upstream, let chunked, false):
            send(part, to: upstream, chunked: chunked, context: context)
        case .forwarding, .finished:
            // What follows the request (a pipelined second one) never goes anywhere.
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .head:
            deadline?.cancel()
            state = .finished
            proxy.refuseMalformed(context.channel, method: "?", RequestHead.Malformed("llhttp cannot read it (\(error))"))
        case .connecting, .forwarding(_, _, false):
            // A body that breaks its own framing ends the exchange both ways.
            end(context)
        case .forwarding, .finished:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(context)
        context.fireChannelInactive()
    }

    /// The command reads slowly: the host's answer waits until it catches up.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .forwarding(let upstream, _, _) = state {
            upstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The command's half-close ends nothing once its request is read.
        if case .head = state, let event = event as? ChannelEvent, event == .inputClosed { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    private func end(_ context: ChannelHandlerContext) {
        if case .forwarding(let upstream, _, _) = state { upstream.close(promise: nil) }
        tunnel?.upstream.close(promise: nil)
        state = .finished
        context.close(promise: nil)
    }

    // MARK: Deciding

    private func begin(_ context: ChannelHandlerContext, _ parsed: HTTPRequestHead) {
        let head: RequestHead, authority: Authority, path: String
        do throws(RequestHead.Malformed) {
            head = try RequestHead(parsed)
            if let tunnel {
                guard head.target.hasPrefix("/") else { throw RequestHead.Malformed("inside a tunnel the target must be a path") }
                // The real value goes only to the host it is for: a Host naming another tenant of the
                // same front end (domain fronting) gets nothing.
                guard let named = head.values("Host").first, tunnel.target.isNamed(by: named) else {
                    throw RequestHead.Malformed("the Host header inside the tunnel must be the tunnel's host \(tunnel.target.hostHeader)")
                }
                (authority, path) = (tunnel.target, head.target)
            } else {
                (authority, path) = try EgressProxy.target(of: head)
            }
        } catch {
            state = .finished
            tunnel?.upstream.close(promise: nil)
            return proxy.refuseMalformed(context.channel, method: parsed.method.rawValue, error)
        }
        let channel = context.channel
        func refuse(_ rule: String, address: String? = nil) {
            state = .finished
            tunnel?.upstream.close(promise: nil)
            proxy.refuse(channel, .init(method: head.method, host: authority.host, port: authority.port, allowed: false, rule: rule, address: address))
        }
        if let cap = proxy.policy.maxBytes, proxy.isPastCap { return refuse("max_bytes = \(cap)") }
        if EgressProxy.echoingMethods.contains(head.method.uppercased()) { return refuse("\(head.method) (it echoes the request, secrets included)") }
        if let tunnel { return forward(context, head, path: path, authority: authority, swaps: tunnel.swaps, to: tunnel.upstream) }

        let rule: String, addressRule: Bool
        switch proxy.policy.decide(method: head.method, host: authority.host, port: authority.port) {
        case .denied(let denial): return refuse(denial)
        case .allowed(let allowance, let byAddress): (rule, addressRule) = (allowance, byAddress)
        }
        state = .connecting([])
        channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        // The name resolved is the name matched, byte for byte (see `Authority`); getaddrinfo blocks,
        // so it runs on NIO's thread pool, never on the event loop.
        let resolve = proxy.resolve, loop = context.eventLoop
        let addresses: EventLoopFuture<[IPAddress]> = IPAddress(authority.host).map { loop.makeSucceededFuture([$0]) }
            ?? NIOThreadPool.singleton.runIfActive(eventLoop: loop) { resolve(authority.host) }
        addresses.assumeIsolated().whenComplete { result in
            let addresses = (try? result.get()) ?? []
            guard !addresses.isEmpty else {
                self.state = .finished
                return self.proxy.refuseUnreachable(channel, head.method, authority, rule: "no such host", address: nil, "\(authority.host) does not resolve")
            }
            // A name may resolve to internal and public addresses at once: only the public ones are tried.
            let usable = addresses.filter { addressRule || !$0.isInternal }
            guard !usable.isEmpty else { return refuse("internal address \(addresses[0].text)", address: addresses[0].text) }
            self.proxy.connect(usable, port: authority.port, on: loop).assumeIsolated().whenComplete { result in
                guard case .connecting(let held) = self.state, channel.isActive else {
                    if case .success(let (upstream, _)) = result { upstream.close(promise: nil) }
                    return
                }
                guard case .success(let (upstream, address)) = result else {
                    self.state = .finished
                    return self.proxy.refuseUnreachable(
                        channel, head.method, authority, rule: "unreachable", address: usable[0].text, "\(authority.host):\(authority.port) does not answer")
                }
                self.connected(context, head, path: path, authority: authority, rule: rule, upstream: upstream, address: address, held: held)
            }
        }
    }

    private func connected(
        _ context: ChannelHandlerContext, _ head: RequestHead, path: String, authority: Authority, rule: String, upstream: any Channel, address: IPAddress,
        held: [HTTPServerRequestPart]
    ) {
        let tunnel = head.method == "CONNECT"
        // Plain http carries a secret only where the profile says the host may have it in the clear.
        let swaps = proxy.dummies.filter {
            $0.secret.host.matches(host: authority.host, port: authority.port) && !$0.real.isEmpty && (tunnel || $0.secret.insecureHTTP)
        }
        proxy.record(.init(method: head.method, host: authority.host, port: authority.port, allowed: true, rule: rule, address: address.text, secrets: swaps.map(\.secret.variable)))
        guard tunnel else {
            forward(context, head, path: path, authority: authority, swaps: swaps, to: upstream)
            for part in held { take(part, context) }
            return
        }
        state = .finished
        if let key = proxy.authority, !swaps.isEmpty {
            broker(context, upstream, target: authority, swaps: swaps, authority: key)
        } else {
            splice(context, upstream)
        }
    }

    // MARK: Forwarding

    /// One request to the host: the proxy's own head, then exactly the body llhttp framed (what comes
    /// after it is dropped), while the answer flows back scrubbed of every real secret.
    private func forward(_ context: ChannelHandlerContext, _ head: RequestHead, path: String, authority: Authority, swaps: [EgressProxy.Swap], to upstream: any Channel) {
        let outgoing = EgressProxy.upstreamHead(head, path: path, authority: authority, swaps: swaps)
        guard proxy.reserve(outgoing.count) else {
            state = .finished
            upstream.close(promise: nil)
            return proxy.refuse(context.channel, .init(method: head.method, host: authority.host, port: authority.port, allowed: false,
                                                       rule: "max_bytes = \(proxy.policy.maxBytes ?? 0)", address: nil))
        }
        do {
            try upstream.pipeline.syncOperations.addHandler(Relay(proxy: proxy, partner: context.channel, role: .answer))
        } catch {
            return end(context)
        }
        state = .forwarding(upstream: upstream, chunked: (try? head.framing()) == .chunked, bodyDone: false)
        upstream.writeAndFlush(ByteBuffer(bytes: outgoing), promise: nil)
        upstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        context.read()
    }

    /// A body part on to the host, framed again by the proxy: as it came for Content-Length, as one
    /// chunk each for chunked (trailers dropped).
    private func send(_ part: HTTPServerRequestPart, to upstream: any Channel, chunked: Bool, context: ChannelHandlerContext) {
        var out: ByteBuffer
        switch part {
        case .head: return
        case .body(let bytes):
            guard bytes.readableBytes > 0 else { return }
            guard chunked else { return pass(bytes) }
            out = context.channel.allocator.buffer(capacity: bytes.readableBytes + 16)
            out.writeString(String(bytes.readableBytes, radix: 16) + "\r\n")
            out.writeImmutableBuffer(bytes)
            out.writeString("\r\n")
        case .end:
            state = .forwarding(upstream: upstream, chunked: chunked, bodyDone: true)
            guard chunked else { return }
            out = ByteBuffer(string: "0\r\n\r\n")
        }
        pass(out)

        func pass(_ bytes: ByteBuffer) {
            guard proxy.charge(bytes.readableBytes) else { return end(context) }
            upstream.writeAndFlush(bytes, promise: nil)
            // A host that reads slowly holds the command's upload back.
            if !upstream.isWritable { context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
        }
    }

    // MARK: Tunnels

    /// A plain tunnel: 200, then bytes both ways until both sides are done.
    private func splice(_ context: ChannelHandlerContext, _ upstream: any Channel) {
        let client = context.channel
        do {
            let ends = Relay.Ends()
            try upstream.pipeline.syncOperations.addHandler(Relay(proxy: proxy, partner: client, role: .tunnel(ends, side: 1)))
            try client.pipeline.syncOperations.addHandler(Relay(proxy: proxy, partner: upstream, role: .tunnel(ends, side: 0)))
            client.writeAndFlush(ByteBuffer(bytes: EgressProxy.established), promise: nil)
            try dropHTTP(client)
            client.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            upstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        } catch {
            end(context)
        }
    }

    /// A tunnel to a host a secret is bound to, opened: TLS to the real host first (checked against
    /// the host's trust store, so a failure is still a plain 502), then 200 and the command's TLS
    /// with a certificate from the session's CA, then one request read as any other.
    private func broker(_ context: ChannelHandlerContext, _ upstream: any Channel, target: Authority, swaps: [EgressProxy.Swap], authority: OpaquePointer) {
        let client = context.channel, proxy = self.proxy
        var error = [CChar](repeating: 0, count: 512)
        guard let outer = ctls_client_new(authority, target.host, &error, error.count) else {
            upstream.close(promise: nil)
            return proxy.refuseUnreachable(client, "CONNECT", target, rule: String(characters: error), address: nil, String(characters: error))
        }
        let handshake = upstream.eventLoop.makePromise(of: Void.self)
        do {
            try upstream.pipeline.syncOperations.addHandler(TLSHandler(session: outer, established: handshake))
        } catch {
            return end(context)
        }
        let timeout = upstream.eventLoop.scheduleTask(in: .seconds(30)) { upstream.close(promise: nil) }
        upstream.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        handshake.futureResult.assumeIsolated().whenComplete { result in
            timeout.cancel()
            if case .failure(let failure) = result {
                upstream.close(promise: nil)
                let reason = "\(failure)"
                return proxy.refuseUnreachable(client, "CONNECT", target, rule: reason, address: nil,
                                               "\(reason) (\(target.host)). The proxy trusts the system's CAs and toolhost's SSL_CERT_FILE")
            }
            guard client.isActive, let inner = ctls_server_new(authority, target.host, &error, error.count) else {
                upstream.close(promise: nil)
                return client.close(promise: nil)
            }
            do {
                let decoder = try client.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
                client.writeAndFlush(ByteBuffer(bytes: EgressProxy.established), promise: nil)
                // After the CONNECT's decoder, so that what the command sent early (its ClientHello)
                // reaches the TLS handler once that decoder is gone.
                let sync = client.pipeline.syncOperations
                try sync.addHandler(TLSHandler(session: inner, established: client.eventLoop.makePromise()))
                try sync.addHandler(RequestLineCheck(proxy: proxy))
                try sync.addHandler(ByteToMessageHandler(EgressProxy.requestDecoder()))
                try sync.addHandler(RequestStage(proxy: proxy, tunnel: Tunnel(target: target, swaps: swaps, upstream: upstream)))
                try self.dropHTTP(client, decoder: decoder)
                client.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            } catch {
                upstream.close(promise: nil)
                client.close(promise: nil)
            }
        }
    }

    /// Removes this stage and the decoder that read the CONNECT: whatever the command sent after
    /// its head reaches what comes next, as raw bytes.
    private func dropHTTP(_ channel: any Channel, decoder: ByteToMessageHandler<HTTPRequestDecoder>? = nil) throws {
        let sync = channel.pipeline.syncOperations
        let decoder = try decoder ?? sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        sync.removeHandler(self, promise: nil)
        sync.removeHandler(decoder, promise: nil)
    }
}

/// Holds a connection's first bytes until its request line is whole, and lets it through only when
/// it is METHOD SP TARGET SP VERSION CRLF with one space each: llhttp reads `GET  /x` (two spaces)
/// as a request for /x, where another reader sees an empty target.
final class RequestLineCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let proxy: EgressProxy
    private var held: ByteBuffer?

    init(proxy: EgressProxy) { self.proxy = proxy }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var held = self.held {
            held.writeBuffer(&bytes)
            bytes = held
        }
        guard let end = bytes.readableBytesView.firstIndex(of: 0x0A) else {
            guard bytes.readableBytes < 16 << 10 else { return refuse(context, "a request line over 16 KB") }
            held = bytes
            return
        }
        let line = bytes.readableBytesView[bytes.readerIndex..<end]
        let spaces = line.indices.filter { line[$0] == 0x20 }
        guard line.last == 0x0D, spaces.count == 2, spaces[1] - spaces[0] > 1, spaces[0] > line.startIndex, line.endIndex - spaces[1] > 2 else {
            return refuse(context, "the request line is not METHOD SP TARGET SP VERSION CRLF")
        }
        held = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, _ why: String) {
        held = nil
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
        let stage = try? context.pipeline.syncOperations.handler(type: RequestStage.self)
        stage?.refused()
        proxy.refuseMalformed(context.channel, method: "?", RequestHead.Malformed(why))
    }
}

/// One direction of a proxied connection: what its channel reads goes to the partner, counted
/// against max_bytes, and a partner that cannot take more pauses the reading. For the answer to a
/// forwarded request, each read is scrubbed of every real secret and the host's end closes the
/// command's connection after the last byte (one request per connection). In a plain tunnel, one
/// side's end closes the partner's output, and the tunnel closes once both sides are done.
final class Relay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Which sides of a tunnel have ended their input (both live on one event loop).
    final class Ends {
        var closed = [false, false]
    }

    enum Role {
        case answer
        case tunnel(Ends, side: Int)
    }

    private let proxy: EgressProxy
    private let partner: any Channel
    private let role: Role
    private var scrubber: SecretScrubber
    private var finished = false

    init(proxy: EgressProxy, partner: any Channel, role: Role) {
        self.proxy = proxy
        self.partner = partner
        self.role = role
        // A tunnel's bytes are TLS the proxy cannot read: nothing to scrub there.
        if case .answer = role { scrubber = SecretScrubber(pairs: proxy.scrubPairs) } else { scrubber = SecretScrubber(pairs: []) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard proxy.charge(bytes.readableBytes) else {
            finished = true
            partner.close(promise: nil)
            return context.close(promise: nil)
        }
        partner.write(scrubber.isEmpty ? bytes : ByteBuffer(bytes: scrubber.feed(Array(bytes.readableBytesView)[...])), promise: nil)
        if !partner.isWritable { context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } }
    }

    func channelReadComplete(context: ChannelHandlerContext) { partner.flush() }

    /// This side takes more again: the partner reads again.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else { return context.fireUserInboundEventTriggered(event) }
        switch role {
        case .answer:
            finish(context)
        case .tunnel(let ends, let side):
            ends.closed[side] = true
            if ends.closed.allSatisfy({ $0 }) {
                partner.close(promise: nil)
                context.close(promise: nil)
            } else {
                partner.close(mode: .output, promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .answer = role { finish(context) } else { partner.close(promise: nil) }
        context.fireChannelInactive()
    }

    /// What the scrubber held back, then the end: the command's connection closes after the last byte.
    private func finish(_ context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        let partner = self.partner
        partner.writeAndFlush(ByteBuffer(bytes: scrubber.finish())).whenComplete { _ in partner.close(promise: nil) }
        context.close(promise: nil)
    }
}

/// Closes a connection idle for the given spell (an `IdleStateHandler` stands before it).
final class CloseWhenIdle: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { return context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Answers a connection over the session's cap with 503 and closes it.
final class Turnaway: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let answer: [UInt8]

    init(_ answer: [UInt8]) { self.answer = answer }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        channel.writeAndFlush(ByteBuffer(bytes: answer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
