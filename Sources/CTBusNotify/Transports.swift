import AsyncHTTPClient
import CTBusSchema
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// Signs a webhook request as the Standard Webhooks specification does: HMAC-SHA256, keyed by
/// the secret's decoded bytes, over `id.timestamp.body`, sent as `v1,<base64>` in the
/// `webhook-signature` header beside `webhook-id` and `webhook-timestamp`.
public enum WebhookSignature {
    public static func sign(id: String, timestamp: Int64, body: Data, key: Data) -> String {
        var content = Data("\(id).\(timestamp).".utf8)
        content.append(body)
        let code = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))
        return "v1," + Data(code).base64EncodedString()
    }
}

/// Why an attempt failed, in words that carry no content of the messages, and whether another
/// attempt can help.
public struct SendFailure: Error, Equatable, Sendable {
    public let words: String
    /// A failure the operator must fix (a sendmail usage or configuration error, a webhook
    /// that says it is gone): logged as an error, still retried until the attempts run out,
    /// except `gone`.
    public let needsOperator: Bool
    /// The receiver said it wants no more (HTTP 410): given up at once.
    public let gone: Bool
    /// The receiver asked to wait this long (Retry-After).
    public let retryAfter: Duration?

    public init(_ words: String, needsOperator: Bool = false, gone: Bool = false, retryAfter: Duration? = nil) {
        self.words = words
        self.needsOperator = needsOperator
        self.gone = gone
        self.retryAfter = retryAfter
    }
}

/// Posts webhook requests: redirects are failures (never followed), only 2xx is success, the
/// response body is read up to 64 KiB and dropped.
public struct WebhookTransport: Sendable {
    let client: HTTPClient
    let timeout: Duration

    public init(client: HTTPClient, timeout: Duration) {
        self.client = client
        self.timeout = timeout
    }

    public func post(url: String, id: String, secret: String, body: Data, at now: Date) async throws(SendFailure) {
        let key: Data
        do { key = try NotificationTarget.webhookKey(secret) } catch { throw SendFailure("the subscription's secret is not a webhook secret", needsOperator: true) }
        let timestamp = Int64(now.timeIntervalSince1970.rounded(.down))
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "ctbus-notifier")
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(name: "webhook-signature", value: WebhookSignature.sign(id: id, timestamp: timestamp, body: body, key: key))
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .milliseconds(timeout.milliseconds))
            _ = try await response.body.collect(upTo: 64 * 1024)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw SendFailure("the webhook did not answer within \(timeout.milliseconds) ms")
        } catch is NIOTooManyBytesError {
            throw SendFailure("the webhook's answer was longer than 64 KiB")
        } catch {
            throw SendFailure("the webhook could not be reached (\(Self.words(error)))")
        }
        let status = response.status.code
        switch status {
        case 200..<300: return
        case 410: throw SendFailure("the webhook answered 410 Gone: it wants no more notifications", needsOperator: true, gone: true)
        case 300..<400: throw SendFailure("the webhook answered \(status) (a redirect, which is not followed)", needsOperator: true)
        case 429, 502, 503, 504:
            let after = response.headers.first(name: "retry-after").flatMap { Int64($0) }.map { Duration.seconds(min(max($0, 0), 86_400)) }
            throw SendFailure("the webhook answered \(status)", retryAfter: after)
        default: throw SendFailure("the webhook answered \(status)")
        }
    }

    /// An error's kind without any part of the request.
    static func words(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? IOError { return "\(error.description)" }
        return String(describing: type(of: error))
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// Gives mail to the host's sendmail interface (`sendmail -t -i`: recipients from the
/// headers, a lone "." is text): exit 0 is taken; any other exit is retried, since msmtp, for
/// one, answers 69 for temporary and permanent refusals alike; 64 (usage) and 78
/// (configuration) need the operator. The program runs on a thread of its own and is killed
/// when it takes longer than `timeout`.
public struct MailTransport: Sendable {
    let command: [String]
    let timeout: Duration

    public init(command: [String], timeout: Duration) {
        self.command = command
        self.timeout = timeout
    }

    public func send(_ mail: String) async throws(SendFailure) {
        let (command, timeout) = (command, timeout)
        let outcome: Result<Void, SendFailure> = await withCheckedContinuation { continuation in
            OwnThread.start(name: "ctbus-sendmail") {
                continuation.resume(returning: Self.run(command, input: Data(mail.utf8), timeout: timeout))
            }
        }
        try outcome.get()
    }

    private static func run(_ command: [String], input: Data, timeout: Duration) -> Result<Void, SendFailure> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let stdin = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderr
        let ended = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in ended.signal() }
        do {
            try process.run()
        } catch {
            return .failure(SendFailure("\(command[0]) could not be started", needsOperator: true))
        }
        // The mail is at most 64 KiB: written on this thread while a reader drains stderr.
        let errors = ErrorText()
        OwnThread.start { errors.read(stderr.fileHandleForReading) }
        do {
            try stdin.fileHandleForWriting.write(contentsOf: input)
        } catch {
            // The program ended without reading it all: its exit status says why.
        }
        try? stdin.fileHandleForWriting.close()
        if ended.wait(timeout: .now() + .milliseconds(Int(timeout.milliseconds))) == .timedOut {
            // SIGKILL: a daemon that watches signals ignores SIGTERM, and its children inherit that.
            kill(process.processIdentifier, SIGKILL)
            ended.wait()
            return .failure(SendFailure("\(command[0]) took longer than \(timeout.milliseconds) ms and was stopped"))
        }
        errors.finished.wait()
        let status = process.terminationStatus
        guard process.terminationReason == .exit, status == 0 else {
            let said = errors.firstLine
            let why = process.terminationReason == .uncaughtSignal ? "was stopped by signal \(status)" : "exited with \(status)"
            return .failure(SendFailure("\(command[0]) \(why)" + (said.isEmpty ? "" : ": \(said)"),
                                        needsOperator: status == 64 || status == 78))
        }
        return .success(())
    }

    /// The program's error output: its first line, at most 200 characters, kept for the status
    /// page (the relay's answer, never the mail).
    private final class ErrorText: @unchecked Sendable {
        private var text = ""
        let finished = DispatchSemaphore(value: 0)

        func read(_ handle: FileHandle) {
            let data = handle.readDataToEndOfFile()
            text = String(decoding: data.prefix(4_096), as: UTF8.self)
            finished.signal()
        }

        /// Read after `finished`.
        var firstLine: String {
            let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            return line.count > 200 ? String(line.prefix(200)) + "…" : line
        }
    }
}
