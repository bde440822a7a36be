import CTBusSchema
import Hummingbird
import Logging
import NIOCore

/// A browser's requests to the console's pages: every page hands out the CSRF cookie and token,
/// and every form that changes something is read and checked here before anything is written.
struct FormRequests: Sendable {
    /// The largest form body read (a pasted activity matrix of 500 rows fits).
    static let maxFormBytes = 4 << 20

    let csrf: CSRF
    let refusals: SharedThrottledLogger
    let responses: HTMLResponder

    /// Runs `body` with the browser's CSRF token, and sets its cookie when the browser had none.
    func withCookie(_ request: Request, _ body: (String) throws -> Response) rethrows -> Response {
        let cookie = csrf.cookie(of: request)
        var response = try body(csrf.token(cookie: cookie.value, user: request.headers.consoleUser))
        if cookie.isNew { csrf.setCookie(cookie.value, on: &response) }
        return response
    }

    /// A state-changing request: a form body within bounds, sent from this console with a valid
    /// CSRF token; anything else is refused before `body` runs, and nothing is written. `body`
    /// runs on the thread pool (`offPool`) with the form and the token for the page it answers.
    func changing(_ request: Request, _ body: @escaping @Sendable (FormValues, String) throws -> Response) async throws -> Response {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let boundary = request.headers[.contentType].flatMap(FormValues.boundary(ofContentType:))
        guard contentType.hasPrefix("application/x-www-form-urlencoded") || (contentType.hasPrefix("multipart/form-data") && boundary != nil) else {
            return responses.error(.unsupportedMediaType,
                                   "The console takes forms as a browser sends them (application/x-www-form-urlencoded or multipart/form-data).")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.maxFormBytes)
        } catch {
            return responses.error(.contentTooLarge, "The form is larger than \(Self.maxFormBytes >> 20) MiB.")
        }
        let form: FormValues
        do {
            form = try boundary.map { boundary throws(ConsoleInputError) in try FormValues(multipart: buffer, boundary: boundary) }
                ?? FormValues(urlEncoded: String(buffer: buffer))
        } catch {
            return responses.error(.badRequest, "The form could not be read: \(error).")
        }
        if let reason = csrf.refusal(request, token: form.values["csrf"]?.first, user: request.headers.consoleUser) {
            refusals.log("csrf", .notice, "console refused a form: \(reason)", metadata: ["path": "\(CSRF.loggable(request.uri.path))"])
            return responses.error(.forbidden, "Refused: \(reason).")
        }
        return try await offPool { try self.withCookie(request) { token in try body(form, token) } }
    }
}
