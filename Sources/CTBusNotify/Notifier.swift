import AsyncHTTPClient
import CTBusJournal
import CTBusMetricNames
import CTBusSchema
import CoreMetrics
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// When a failed sending is tried again: the first wait doubled at each attempt up to the
/// longest, the second half of each wait drawn at random (so that many sendings that failed
/// together do not come back together), or longer when the receiver asked for it; nil once
/// the attempts are used up.
public struct RetryPolicy: Sendable, Equatable {
    public let first: Duration
    public let longest: Duration
    public let attempts: Int

    public init(first: Duration, longest: Duration, attempts: Int) {
        self.first = first
        self.longest = longest
        self.attempts = attempts
    }

    /// `made`: attempts made, the failed one included; `jitter` in 0..<1.
    public func wait(afterAttempts made: Int, asked: Duration? = nil, jitter: Double) -> Duration? {
        guard made < attempts else { return nil }
        var wait = first
        for _ in 1..<max(made, 1) where wait < longest { wait *= 2 }
        wait = min(wait, longest)
        wait = wait / 2 + (wait / 2) * jitter
        return max(wait, asked ?? .zero)
    }
}

/// Sends what the journal's notification queue holds, for as long as the daemon runs: the due
/// sendings side by side, each recorded as sent, or failed with its retry time, or given
/// up, in the journal; the queue is read again every `poll` while it has nothing due. A sending is taken from the
/// queue only once the receiver took it, so a restart sends what was left, under the same id.
public final class Notifier: Service, Sendable {
    let nodeId: String
    let journal: NodeJournal
    let settings: NotificationSettings
    let rendering: NotificationRendering
    let retry: RetryPolicy
    let logger: Logger
    /// Failures a lasting fault repeats (a relay down) are written once a minute.
    let throttled: SharedThrottledLogger
    let sent: [String: Counter]
    let failedAttempts: [String: Counter]
    /// How often the queue is read when it had nothing due.
    let poll: Duration
    /// The time the queue is read at: now, or for a test a day ahead, to see a digest due.
    let queueTime: @Sendable () -> Date

    public init(nodeId: String, journal: NodeJournal, settings: NotificationSettings, consoleURL: String,
                wording: NotificationWording, logger: Logger, metrics: any MetricsFactory, poll: Duration = .seconds(1),
                queueTime: @escaping @Sendable () -> Date = { Date() }) {
        self.nodeId = nodeId
        self.journal = journal
        self.settings = settings
        var base = settings.consoleURL ?? consoleURL
        while base.hasSuffix("/") { base.removeLast() }
        rendering = NotificationRendering(nodeId: nodeId, consoleURL: base, wording: wording)
        retry = RetryPolicy(first: .milliseconds(settings.retryFirstMilliseconds), longest: .milliseconds(settings.retryMaxMilliseconds),
                            attempts: settings.attempts)
        self.logger = logger
        throttled = SharedThrottledLogger(logger, period: .seconds(60))
        self.poll = poll
        self.queueTime = queueTime
        sent = Dictionary(uniqueKeysWithValues: ["mail", "webhook"].map { channel in
            (channel, Counter(label: MetricName.nodeNotificationsSentTotal.rawValue, dimensions: [("channel", channel)], factory: metrics))
        })
        failedAttempts = Dictionary(uniqueKeysWithValues: ["mail", "webhook"].map { channel in
            (channel, Counter(label: MetricName.nodeNotificationAttemptsFailedTotal.rawValue, dimensions: [("channel", channel)], factory: metrics))
        })
    }

    public func run() async throws {
        let timeout = Int64(settings.timeoutMilliseconds)
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(
            redirectConfiguration: .disallow, timeout: .init(connect: .milliseconds(min(5_000, timeout)), read: .milliseconds(timeout))))
        let webhook = WebhookTransport(client: client, timeout: .milliseconds(settings.timeoutMilliseconds))
        let mail = MailTransport(command: settings.sendmail, timeout: .milliseconds(settings.timeoutMilliseconds))
        await cancelWhenGracefulShutdown { [self] in
            var lastForget = ContinuousClock.now - .seconds(3_600)
            while !Task.isCancelled {
                let sendings: [NotificationSending]
                do {
                    sendings = try journal.notifications.due(now: queueTime())
                } catch {
                    throttled.log("queue", .error, "the notification queue could not be read", metadata: ["error": "\(error)"])
                    sendings = []
                }
                // Side by side: a receiver that takes its whole timeout holds up no other.
                await withTaskGroup { group in
                    for sending in sendings {
                        group.addTask { await self.attempt(sending, mail: mail, webhook: webhook) }
                    }
                }
                if ContinuousClock.now - lastForget > .seconds(3_600) {
                    lastForget = .now
                    _ = try? journal.notifications.forgetSent(before: Date().addingTimeInterval(-30 * 86_400))
                }
                if sendings.isEmpty { try? await Task.sleep(for: poll) }
            }
        }
        try? await client.shutdown()
    }

    /// One attempt at a sending, and its outcome recorded.
    func attempt(_ sending: NotificationSending, mail: MailTransport, webhook: WebhookTransport) async {
        let now = Date()
        let channel = if case .mail = sending.subscription.channel { "mail" } else { "webhook" }
        var outcome: Result<Void, SendFailure> = .success(())
        do throws(SendFailure) {
            switch sending.subscription.channel {
            case .mail(let address):
                try await mail.send(rendering.mail(sending, from: settings.mailFrom ?? "ctbus@\(nodeId).invalid", to: address, at: now))
            case .webhook(let url, let secret):
                try await webhook.post(url: url, id: "\(nodeId)-\(sending.id)", secret: secret, body: rendering.webhookBody(sending, at: now), at: now)
            }
        } catch {
            outcome = .failure(error)
        }
        let metadata: Logger.Metadata = ["subscription": "\(sending.subscription.name)", "sending": "\(sending.id)",
                                         "messages": "\(sending.messages.count)", "channel": "\(channel)"]
        do {
            switch outcome {
            case .success:
                try journal.notifications.sent(sending.id)
                sent[channel]?.increment()
                logger.info("notification sent", metadata: metadata)
            case .failure(let failure):
                failedAttempts[channel]?.increment()
                let made = sending.attempts + 1
                let wait = failure.gone ? nil : retry.wait(afterAttempts: made, asked: failure.retryAfter, jitter: Double.random(in: 0..<1))
                try journal.notifications.failed(sending.id, error: failure.words, retryAt: wait.map { now.addingTimeInterval(Double($0.milliseconds) / 1_000) })
                var details = metadata
                details["error"] = "\(failure.words)"
                details["attempt"] = "\(made)"
                if wait == nil {
                    logger.error("notification given up", metadata: details)
                } else {
                    throttled.log("\(sending.subscription.id):\(failure.words)", failure.needsOperator ? .error : .warning,
                                  "notification not sent; it will be tried again", metadata: details)
                }
            }
        } catch {
            throttled.log("record", .error, "the notification queue could not be written", metadata: ["error": "\(error)"])
        }
    }
}
