import HTTPTypes
import Hummingbird
import NIOCore

/// Console pages as HTTP responses, laid out with the node's name in the title and navigation.
struct HTMLResponder: Sendable {
    let nodeId: String

    func page(_ page: some ConsolePage, status: HTTPResponse.Status = .ok) -> Response {
        self.page(page.title, marking: page.marking, page.body, status: status)
    }

    func page(_ title: String, marking: String?, _ body: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: PageLayout.page(title: title, node: nodeId, marking: marking, body))))
    }

    /// A page that says what went wrong, titled with the status's reason phrase.
    func error(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var body = HTML()
        body.element("p", text)
        return page(status.reasonPhrase, marking: nil, body, status: status)
    }
}
