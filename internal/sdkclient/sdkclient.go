// Package sdkclient adapts the HTTP client under an AWS SDK for Go v2 client
// so that it works reliably against a server as fast as runnel.
//
// Over HTTP/1.1, about one call in a few hundred against a fast local
// endpoint fails while reading a 200 response with "use of closed network
// connection", and the client itself closed the socket: the SDK (smithy-go's
// ClientHandler) closes the request body as soon as net/http returns the
// response headers, which a fast server sends before net/http's write loop
// has finished writing the request. That loop's last step copies whatever
// the body still holds into io.Discard, and io.Copy does so through the
// body's WriteTo; the SDK's body wrapper answers WriteTo after Close with the
// error io.EOF, which the write loop takes for a failed request write, so it
// closes the connection under the response the caller is reading. Read after
// Close also returns io.EOF, but io.Copy treats that as the end of the body,
// so hiding WriteTo is enough. Against AWS itself the network's latency keeps
// the window closed; against a server on loopback it opens.
package sdkclient

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Guard returns c wrapped so that net/http sees each request body with only
// Read and Close. Use it as the HTTPClient of SDK clients that talk to a
// local server.
func Guard(c aws.HTTPClient) aws.HTTPClient {
	if c == nil {
		c = http.DefaultClient
	}
	return guard{c}
}

type guard struct{ aws.HTTPClient }

func (g guard) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.WithContext(r.Context()) // a shallow copy: the caller's request stays as it was
		r.Body = readOnlyBody{r.Body}
	}
	return g.HTTPClient.Do(r)
}

// readOnlyBody hides every method of a request body but Read and Close.
type readOnlyBody struct{ io.ReadCloser }
