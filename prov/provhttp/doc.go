// Package provhttp serves the provisioning namespace (files.Files) over
// HTTP(S): GET/HEAD and PUT, device digest authentication, the native login
// door's digest check (the server side shared with the registrar:
// hotdesk/sip/digestserver), and a rate limit on failures.
//
// Two front ends serve one Handler: net/http (Handler.ServeHTTP) and
// fasthttp (NewFastServer), which the daemon's phone listeners use: it
// answers the phones' file fetches itself and hands everything else to
// ServeHTTP through fasthttpadaptor (issue 17: net/http's own cost per
// request kept any net/http server below nginx).
package provhttp
