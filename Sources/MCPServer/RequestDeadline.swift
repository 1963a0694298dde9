import HummingbirdCore
import NIOCore
import NIOHTTPTypes

extension HTTPServeOptions {
    /// HTTP/1 with the request deadline and an idle timeout for kept-alive connections.
    var serverBuilder: HTTPServerBuilder {
        let deadline = TimeAmount.nanoseconds(Int64(requestTimeout / .nanoseconds(1)))
        return .http1(configuration: .init(
            additionalChannelHandlers: [RequestDeadline(limit: deadline)], idleTimeout: .seconds(Int64(idleTimeout / .seconds(1)))))
    }

    /// New connections wait in the listen queue while `maxConnections` are open.
    var connectionLimit: any AvailableConnectionsDelegate { MaximumAvailableConnections(maxConnections) }
}

/// Closes a connection whose client is too slow to send a request: its headers must arrive within
/// `limit` of the connection opening (or of the previous response ending), and its body within
/// `limit` of its headers. A slowloris client, trickling bytes to hold connections open, is cut off;
/// a response that streams for minutes (an SSE stream) is never timed.
final class RequestDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limit: TimeAmount
    private var timer: Scheduled<Void>?

    init(limit: TimeAmount) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(context)  // now the body's clock
        case .body: break
        case .end:
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The response is complete: the next request's headers are on the clock.
        if case .end = unwrapOutboundIn(data) { arm(context) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }
}
