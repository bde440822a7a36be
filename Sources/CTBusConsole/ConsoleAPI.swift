import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import CTBusTrace
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwiftProtobuf

/// The console's JSON API, for other systems of the same office: list, show, trace, publish.
/// docs/openapi.json describes it; a test checks every operation there against this server.
/// Field names are snake_case throughout, as in the messages' protobuf JSON. What it shows goes
/// through `VisibleJournal`, as the pages do; what it publishes through `ConsolePublisher`.
struct ConsoleAPI: Sendable {
    let nodeId: String
    let visible: VisibleJournal
    let context: ComposeContext
    let publisher: ConsolePublisher
    let csrf: CSRF
    let refusals: SharedThrottledLogger
    let logger: Logger

    func addRoutes(to router: Router<ConsoleRequestContext>) {
        let api = self
        router.get("/api/v1/messages") { request, _ in try await offPool { api.json { try api.list(request) } } }
        router.post("/api/v1/messages") { request, _ in try await api.publish(request) }
        router.get("/api/v1/messages/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await offPool { api.json { try api.show(id) } }
        }
        router.get("/api/v1/trace") { request, _ in try await offPool { api.json { try api.trace(request) } } }
    }

    /// A JSON error body: `{"error": {"code": ..., "detail": ...}}`.
    struct APIError: Error {
        let status: HTTPResponse.Status
        let code: String
        let detail: String

        init(_ status: HTTPResponse.Status, _ code: String, _ detail: String) {
            self.status = status
            self.code = code
            self.detail = detail
        }
    }

    struct MessageSummary: Encodable {
        let messageId: String
        let type: String
        let classification: String
        let subject: String
        let originator: String
        let direction: String
        let createdAt: Date
        let recordedAt: Date
        let position: Int64
        let revoked: Bool
        let redactedPaths: [String]
        let refusedCode: String?

        init(_ entry: JournalEntry) {
            messageId = entry.messageId
            type = entry.typeName
            classification = entry.classificationName
            subject = entry.subject
            originator = entry.originator
            direction = entry.direction.rawValue
            createdAt = entry.createdAt
            recordedAt = entry.recordedAt
            position = entry.position
            revoked = entry.revokedAt != nil
            redactedPaths = entry.redactedPaths
            refusedCode = entry.refusedCode
        }
    }

    struct MessageList: Encodable {
        let messages: [MessageSummary]
        /// How many entries match, on every page.
        let total: Int
        /// Newest first: pass as `before` for the next (older) page; absent on the last page.
        let nextBefore: Int64?
        /// Oldest first: pass as `after` for the next (newer) page; absent on the last page.
        let nextAfter: Int64?
        /// With `q`: the newest entries the search index does not hold yet (it is being filled).
        let unindexedEntries: Int64?
    }

    struct EntryDetail: Encodable {
        let summary: MessageSummary
        let hash: String
        let revokeReason: String?
        let refusedDetail: String?
        let acknowledgedAt: Date?

        func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(hash, forKey: .hash)
            try container.encodeIfPresent(revokeReason, forKey: .revokeReason)
            try container.encodeIfPresent(refusedDetail, forKey: .refusedDetail)
            try container.encodeIfPresent(acknowledgedAt, forKey: .acknowledgedAt)
        }

        enum Keys: String, CodingKey { case hash, revokeReason, refusedDetail, acknowledgedAt }
    }

    struct Published: Encodable {
        let messageId: String
        /// "queued" (in the outbox; the node daemon sends it) or "draft".
        let status: String
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .utcTime
        return encoder
    }()

    func jsonResponse(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func jsonResponse(_ status: HTTPResponse.Status = .ok, encoding value: some Encodable, headers: HTTPFields = [:]) throws -> Response {
        jsonResponse(status, String(decoding: try Self.encoder.encode(value), as: UTF8.self), headers: headers)
    }

    func jsonError(_ error: APIError) -> Response {
        struct Body: Encodable { let error: Inner; struct Inner: Encodable { let code: String; let detail: String } }
        return (try? jsonResponse(error.status, encoding: Body(error: .init(code: error.code, detail: error.detail))))
            ?? Response(status: .internalServerError)
    }

    /// Runs an API handler; its `APIError` becomes the JSON error, a journal failure a 503.
    func json(_ body: () throws -> Response) -> Response {
        do {
            return try body()
        } catch let error as APIError {
            return jsonError(error)
        } catch {
            logger.error("console API failed: \(error)")
            return jsonError(APIError(.serviceUnavailable, "JOURNAL_UNAVAILABLE", "the journal cannot be read now: \(error)"))
        }
    }

    func list(_ request: Request) throws -> Response {
        let limitText = request.uri.queryParameters.get("limit")
        let limit = limitText.map { Int($0) } ?? VisibleJournal.pageSize
        guard let limit, (1...500).contains(limit) else { throw APIError(.badRequest, "BAD_REQUEST", "limit must be 1 to 500") }
        let filter: JournalFilter
        do {
            filter = try JournalQuery.parse(request.uri.queryParameters).filter
        } catch {
            throw APIError(.badRequest, "BAD_REQUEST", error.description)
        }
        let page = try visible.page(filter, size: limit)
        let newestFirst = filter.newestFirst
        return try jsonResponse(encoding: MessageList(messages: page.entries.map(MessageSummary.init), total: page.total,
                                                      nextBefore: newestFirst ? page.next : nil, nextAfter: newestFirst ? nil : page.next,
                                                      unindexedEntries: page.unindexed))
    }

    func show(_ id: String) throws -> Response {
        let id = MessageID.canonical(id)
        guard let entry = try visible.entry(messageId: id) else {
            throw APIError(.notFound, "NOT_FOUND", "this journal holds no message \(id.prefix(64)) that this console may show")
        }
        guard let message = try? entry.message() else {
            throw APIError(.internalServerError, "UNREADABLE_ENTRY", "the journal entry of \(id) cannot be decoded: run ctbus journal verify")
        }
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        let detail = EntryDetail(summary: MessageSummary(entry), hash: entry.hash.hex,
                                 revokeReason: entry.revokeReason, refusedDetail: entry.refusedDetail, acknowledgedAt: entry.acknowledgedAt)
        let body = "{\"entry\":" + String(decoding: try Self.encoder.encode(detail), as: UTF8.self)
            + ",\"message\":" + (try message.jsonString(options: options)) + "}"
        return jsonResponse(.ok, body)
    }

    func trace(_ request: Request) throws -> Response {
        let state = request.uri.queryParameters.get("member_state").map { String($0).uppercased() }
        if let state, !Geography.isCountryCode(state) {
            throw APIError(.badRequest, "BAD_REQUEST", "member_state must be an ISO 3166-1 alpha-3 code")
        }
        return try jsonResponse(encoding: Traceability.report(try visible.traceMessages().messages, memberState: state))
    }

    /// POST /api/v1/messages: a message in protobuf JSON, as `ctbus publish` reads it, validated
    /// the same way and queued in the outbox (or kept as a draft with `?draft=true`).
    func publish(_ request: Request) async throws -> Response {
        // A page of another site cannot send JSON here without a CORS preflight, which this
        // server never grants; the origin check refuses what a browser marks as cross-site.
        if let reason = csrf.crossOrigin(request) {
            refusals.log("api-origin", .notice, "console API refused a request: \(reason)")
            return jsonError(APIError(.forbidden, "CROSS_ORIGIN", reason))
        }
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
            return jsonError(APIError(.unsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "send the message as application/json"))
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: FormRequests.maxFormBytes)
        } catch {
            return jsonError(APIError(.contentTooLarge, "MESSAGE_TOO_LARGE", "the body is larger than \(FormRequests.maxFormBytes >> 20) MiB"))
        }
        let draft = request.uri.queryParameters.get("draft") == "true"
        return try await offPool { self.json {
            let message: BusMessage
            do {
                message = try Publisher.prepare(json: Data(buffer.readableBytesView), nodeId: nodeId)
                guard context.mayPublish.contains(message.envelope.type) else {
                    throw BusError(.notPermitted, "this node's role may not publish \(message.envelope.type.name)")
                }
                try publisher.publish(message, asDraft: draft)
            } catch let error as BusError {
                let status: HTTPResponse.Status = switch error.code {
                case .notPermitted: .forbidden
                case .messageTooLarge: .contentTooLarge
                default: .unprocessableContent
                }
                throw APIError(status, error.codeName, error.detail)
            } catch let error as StoreError where error.kind == .duplicate {
                throw APIError(.conflict, "DUPLICATE", error.description)
            }
            let id = message.envelope.messageID
            logger.info("console API \(draft ? "saved a draft" : "queued a publication")", metadata: ["message_id": "\(id)"])
            return try self.jsonResponse(.created, encoding: Published(messageId: id, status: draft ? "draft" : "queued"),
                                         headers: [.location: "/api/v1/messages/\(id)"])
        } }
    }
}
