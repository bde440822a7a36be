import HTTPTypes
import Hummingbird
import NIOCore

/// The headers every console response carries.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    static var fields: [(HTTPField.Name, String)] {
        [
            (.contentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("Referrer-Policy")!, "same-origin"),
            (.cacheControl, "no-store"),
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            var body = HTML()
            body.element("p", "There is no such page.")
            response = Response(status: .notFound, headers: [.contentType: "text/html; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: "Not found", node: "", marking: nil, body))))
        }
        for (name, value) in Self.fields { response.headers[name] = value }
        return response
    }
}
