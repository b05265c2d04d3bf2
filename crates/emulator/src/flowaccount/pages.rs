//! The authorize pages: plain HTML forms, no script.

use super::authorize::AuthorizeParams;
use crate::config::FaUser;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6fb;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.75rem;\
box-shadow:0 2px 12px #0001}h1{font-size:1.3rem;margin-top:0}.sandbox{color:#a15c00;\
font-size:.8rem;text-transform:uppercase;letter-spacing:.08em}label{display:block;margin:.8rem 0}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #bbc;border-radius:.4rem}.error{color:#b00020}.business{display:flex;gap:.6rem;\
align-items:center;border:1px solid #dde;border-radius:.4rem;padding:.6rem}\
.actions{display:flex;gap:.6rem;margin-top:1.2rem}button{padding:.5rem 1rem;border-radius:.4rem;\
border:1px solid #2356c7;background:#2356c7;color:#fff}button.secondary{background:#fff;\
color:#2356c7}small{color:#667}";

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
<style>{STYLE}</style></head><body><main><div class=\"sandbox\">FlowAccount · local emulator</div>\
{body}</main></body></html>",
        title = escape(title),
    )
}

fn hidden(params: &AuthorizeParams) -> String {
    params
        .pairs()
        .into_iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            )
        })
        .collect()
}

fn message(text: Option<&str>) -> String {
    text.map(|t| format!("<p class=\"error\">{}</p>", escape(t)))
        .unwrap_or_default()
}

pub(super) fn login(params: &AuthorizeParams, error: Option<&str>) -> String {
    let client = params.client_id.as_deref().unwrap_or_default();
    page(
        "Sign in – FlowAccount",
        &format!(
            "<h1>Sign in to FlowAccount</h1>\
<p><small>Application <b>{client}</b> asks to connect to one of your businesses.</small></p>\
{error}<form method=\"post\" action=\"/flowaccount/connect/authorize\">{hidden}\
<label>Username or e-mail<input type=\"text\" name=\"username\" autocomplete=\"username\" required autofocus></label>\
<label>Password<input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
<div class=\"actions\"><button type=\"submit\">Sign in</button>\
<button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\" formnovalidate>Cancel</button></div>\
</form>",
            client = escape(client),
            error = message(error),
            hidden = hidden(params),
        ),
    )
}

pub(super) fn picker(
    params: &AuthorizeParams,
    ticket: &str,
    user: &FaUser,
    error: Option<&str>,
) -> String {
    let client = params.client_id.as_deref().unwrap_or_default();
    let businesses: String = user
        .businesses
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "<label class=\"business\"><input type=\"radio\" name=\"support_code\" value=\"{code}\"{checked}>\
<span><b>{name}</b><br><small>{code}</small></span></label>",
                code = escape(&b.support_code),
                name = escape(&b.name),
                checked = if i == 0 { " checked" } else { "" },
            )
        })
        .collect();
    page(
        "Choose a business – FlowAccount",
        &format!(
            "<h1>Choose a business</h1>\
<p><small>Signed in as <b>{user}</b>. <b>{client}</b> will get access to the business you choose.</small></p>\
{error}<form method=\"post\" action=\"/flowaccount/connect/authorize\">{hidden}\
<input type=\"hidden\" name=\"ticket\" value=\"{ticket}\">{businesses}\
<div class=\"actions\"><button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
<button type=\"submit\" class=\"secondary\" name=\"decision\" value=\"deny\">Deny</button></div>\
</form>",
            user = escape(&user.username),
            client = escape(client),
            error = message(error),
            hidden = hidden(params),
            ticket = escape(ticket),
        ),
    )
}

pub(super) fn error(text: &str) -> String {
    page(
        "Error – FlowAccount",
        &format!(
            "<h1>Sorry, there was an error</h1><p class=\"error\">{}</p>\
<p><small>The application sent an invalid authorization request, so you cannot be sent back to it.</small></p>",
            escape(text)
        ),
    )
}
