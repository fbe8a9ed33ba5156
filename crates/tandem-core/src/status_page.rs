//! The operator status page shared by a region's `/status` and the gateway's: one HTML document
//! with no external assets, the status JSON embedded, and a small script that renders it and then
//! polls the JSON (`/status.json`) every few seconds, re-rendering in place.
//!
//! The page renders from data only (never from markup the server built), with `textContent`, so
//! nothing a region reports (a name, an error message) can inject markup. Without JavaScript the
//! page links to the JSON.

/// How often the page polls its JSON, in milliseconds.
pub const STATUS_REFRESH_MS: u32 = 5000;

/// The HTML page for `title`, with `json` (the same document `/status.json` serves) embedded and
/// `json_path` polled for updates.
pub fn status_page_html(title: &str, json: &serde_json::Value, json_path: &str) -> String {
    // Inside <script> only `</script` and `<!--` matter; escaping every `<`, `>` and `&` in the
    // JSON text (they can only occur inside strings) rules both out and keeps it valid JSON.
    let data = json
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    PAGE.replace("{{TITLE}}", &esc(title))
        .replace("{{JSON_PATH}}", &esc(json_path))
        .replace("{{REFRESH_MS}}", &STATUS_REFRESH_MS.to_string())
        .replace("{{DATA}}", &data)
}

/// Whether a `/status` request gets the HTML page: `format` (`?format=html|json`) decides, else
/// an `Accept` header naming `text/html` (what browsers send); everyone else gets the JSON.
pub fn status_wants_html(accept: Option<&str>, format: Option<&str>) -> bool {
    match format {
        Some(f) => f.eq_ignore_ascii_case("html"),
        None => accept.is_some_and(|a| a.contains("text/html")),
    }
}

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 18px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:18px;margin:0}header small{opacity:.75}
main{padding:12px 18px;display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:12px}
section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:8px 12px}
section.wide{grid-column:1/-1}
h2{font-size:15px;margin:4px 0 8px}h3{font-size:14px;margin:10px 0 4px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eceef2;vertical-align:top}
th{font-weight:600;color:#4a5263}
.b{display:inline-block;padding:0 7px;border-radius:9px;font-weight:600;font-size:12px}
.ok{background:#d7f5df;color:#115c26}.warn{background:#fff1c7;color:#7a5200}.bad{background:#ffd9d9;color:#8a1010}.na{background:#eceef2;color:#4a5263}
.muted{color:#6b7385}.stale{background:#8a1010;color:#fff;padding:4px 18px}
</style></head>
<body data-source="embedded" data-refreshes="0">
<header><h1 id="title">{{TITLE}}</h1><small id="updated"></small><small><a style="color:#9cf" href="{{JSON_PATH}}">JSON</a></small></header>
<div id="banner"></div>
<main id="root"><noscript>This page renders with JavaScript; the same data is at <a href="{{JSON_PATH}}">{{JSON_PATH}}</a>.</noscript></main>
<script id="status-data" type="application/json">{{DATA}}</script>
<script>
"use strict";
(function(){
const JSON_PATH="{{JSON_PATH}}",EVERY={{REFRESH_MS}};
function el(tag,attrs,...kids){const e=document.createElement(tag);for(const[k,v]of Object.entries(attrs||{})){if(v!==undefined&&v!==null)e.setAttribute(k,String(v));}
 for(const c of kids.flat()){if(c===null||c===undefined)continue;e.append(c instanceof Node?c:document.createTextNode(String(c)));}return e;}
function badge(text,cls){return el("span",{class:"b "+cls,"data-badge":text},text);}
function cls(s){s=String(s).toLowerCase();
 if(["ready","ok","serving","closed","idle","running","busy","live","standalone","yes","reachable","done"].includes(s))return"ok";
 if(["open","unreachable","error","failed","not ready","down","no"].includes(s))return"bad";
 if(["half-open","halfopen","recovering","catching-up","loading","stale","off","never"].includes(s))return"warn";return"na";}
function age(secs){if(secs===null||secs===undefined)return"never";secs=Math.max(0,secs);
 if(secs<1)return"just now";if(secs<90)return Math.round(secs)+" s ago";if(secs<5400)return Math.round(secs/60)+" min ago";
 if(secs<172800)return Math.round(secs/3600)+" h ago";return Math.round(secs/86400)+" d ago";}
function when(now,t){return t?age(now-t):"never";}
function table(head,rows,attrs){return el("table",attrs||{},el("thead",{},el("tr",{},head.map(h=>el("th",{},h)))),el("tbody",{},rows));}
function kv(pairs){return el("table",{},el("tbody",{},pairs.filter(p=>p).map(([k,v])=>el("tr",{},el("th",{},k),el("td",{},v)))));}
function state(s){return s===undefined||s===null?"":String(s).replace(/([a-z])([A-Z])/g,"$1-$2").toLowerCase();}
function regionView(d,name){
 const now=d.now,h=d.health||{},r=d.replication||{},b=d.backup||{},a=d.assets||{};
 const out=[];
 out.push(el("section",{"data-panel":"health","data-region":name},el("h2",{},"Region "+d.region+(d.node?" · node "+d.node:"")),
  kv([["health",badge(h.status,cls(h.status))],["speaker",badge(h.speaker,cls(h.speaker))],
   ...Object.entries(h.checks||{}).map(([k,v])=>[k,badge(v,cls(v))]),
   ["queues","stt "+((h.queues||{}).stt??0)+", tts "+((h.queues||{}).tts??0)]])));
 out.push(el("section",{"data-panel":"replication","data-region":name},el("h2",{},"Replication to the pair"),
  r.pair?kv([["pair",r.pair],["link",badge(r.reachable?"reachable":"unreachable",r.reachable?"ok":"bad")],
   ["behind",(r.behindChanges??0)+" changes (pair head "+(r.pairHead??0)+", applied up to "+(r.cursor??0)+")"],
   ["last pull",when(now,r.lastPull)],["apply lag (mean)",r.meanApplyLagSecs===null||r.meanApplyLagSecs===undefined?"no changes yet":r.meanApplyLagSecs.toFixed(3)+" s"],
   ["caught up",when(now,r.caughtUpAt)],r.lastError?["last error",el("span",{class:"muted"},r.lastError)]:null])
  :el("p",{class:"muted"},"No pair configured: speaker data is not replicated.")));
 out.push(el("section",{"data-panel":"backup","data-region":name},el("h2",{},"Backup"),
  b.enabled?kv([["last backup",badge(b.lastSuccess?age(now-b.lastSuccess):"never",b.lastSuccess?(now-b.lastSuccess<3*(b.intervalSecs||60)?"ok":"warn"):"warn")],
   ["snapshot",b.lastSnapshot||"—"],["every",(b.intervalSecs||0)+" s"],["runs","ok "+(b.runsOk||0)+", failed "+(b.runsFailed||0)],
   b.lastError?["last error",el("span",{class:"muted"},b.lastError)]:null]):el("p",{class:"muted"},"The backup worker is off (backup.interval_secs = 0).")));
 const kinds=Object.entries(a.kinds||{});
 out.push(el("section",{"data-panel":"assets","data-region":name},el("h2",{},"Assets"),
  table(["kind","count"],[["resources",a.resources],["speaker profiles",a.speakerProfiles],["speaker enrollments",a.speakerEnrollments],...kinds]
   .map(([k,v])=>el("tr",{"data-asset":k},el("td",{},k),el("td",{},v??"—"))))));
 out.push(el("section",{"data-panel":"workers","data-region":name,class:"wide"},el("h2",{},"Background workers"),
  table(["worker","kind","state","last run","runs","errors","detail"],(d.workers||[]).map(w=>el("tr",{"data-worker":w.name,"data-state":w.state},
   el("td",{},w.name),el("td",{},w.kind),el("td",{},badge(w.state,cls(w.state))),el("td",{},when(now,w.lastRun)),el("td",{},w.runs??0),el("td",{},w.errors??0),
   el("td",{class:"muted"},[w.detail||"",w.lastError?" — "+w.lastError:""].join("")))))));
 out.push(events(d,"Recent failovers and failbacks",name));
 return out;}
function events(d,title,name){const ev=(d.events||[]).slice().reverse();
 return el("section",{"data-panel":"events","data-region":name,class:"wide"},el("h2",{},title),ev.length?table(["when","event","region","detail"],
  ev.map(e=>el("tr",{"data-event":e.kind},el("td",{},when(d.now,e.at)),el("td",{},badge(e.kind,cls(e.kind.includes("failback")||e.kind.includes("serving")||e.kind.includes("readmit")||e.kind.includes("reachable-again")?"ok":e.kind.includes("failover")||e.kind.includes("trip")||e.kind.includes("eject")||e.kind.includes("unreachable")?"bad":"na"))),
   el("td",{},e.region||""),el("td",{class:"muted"},e.message||"")))):el("p",{class:"muted"},"None since this process started."));}
function breakerRows(list){const rows=[];for(const r of list){const st=state(r.state);
 rows.push(el("tr",{"data-region":r.name,"data-breaker":st,"data-health":r.health||""},el("td",{},r.name),el("td",{},r.endpoint),
  el("td",{},badge(r.health||"unknown",cls(r.health||"unknown"))),el("td",{},badge(st,cls(st))),el("td",{},r.consecutive_failures),
  el("td",{},(r.ewma_latency_ms||0).toFixed(1)+" ms"),el("td",{},r.preferred?"yes":"")));
 for(const n of r.nodes||[]){const ns=state(n.state);rows.push(el("tr",{"data-node":n.endpoint,"data-region-of":r.name,"data-breaker":ns},
  el("td",{class:"muted"},"  node"),el("td",{},n.endpoint),el("td",{},badge(n.in_rotation?"in rotation":"ejected",n.in_rotation?"ok":"bad")),
  el("td",{},badge(ns,cls(ns))),el("td",{},n.consecutive_failures),el("td",{},""),el("td",{},"")));}}return rows;}
function gatewayView(d){const out=[];const head=["region","endpoint","health","breaker","failures","latency","preferred"];
 out.push(el("section",{"data-panel":"regions",class:"wide"},el("h2",{},"Regions as the gateway sees them"),table(head,breakerRows(d.regions||[]),{id:"regions"}),
  (d.speaker_regions||[]).length?[el("h3",{},"Speaker routes (with discovered pairs)"),table(head,breakerRows(d.speaker_regions),{id:"speaker-regions"})]:null));
 out.push(events(d,"Recent failovers and failbacks (this gateway)",""));
 for(const [name,rs] of Object.entries(d.regionStatus||{})){
  if(rs.reachable&&rs.status){out.push(...regionView(rs.status,name));}
  else{out.push(el("section",{"data-panel":"unreachable","data-region":name},el("h2",{},"Region "+name),badge("unreachable","bad"),
   el("p",{class:"muted"},"Its /status.json did not answer: "+(rs.error||"no answer"))));}}
 return out;}
let last=null;
function render(d,live){last=d;const root=document.getElementById("root");root.replaceChildren(...(d.kind==="gateway"?gatewayView(d):regionView(d,d.region)));
 document.getElementById("updated").textContent="as of "+new Date(d.now*1000).toISOString().replace("T"," ").slice(0,19)+" UTC"+(live?"":" (page load)");
 document.body.dataset.kind=d.kind;}
async function refresh(){try{const r=await fetch(JSON_PATH,{cache:"no-store",headers:{accept:"application/json"}});if(!r.ok)throw new Error("HTTP "+r.status);
 render(await r.json(),true);document.body.dataset.source="live";document.body.dataset.refreshes=String(Number(document.body.dataset.refreshes)+1);
 document.getElementById("banner").replaceChildren();}
 catch(e){document.body.dataset.source="stale";document.getElementById("banner").replaceChildren(el("div",{class:"stale"},"Cannot refresh ("+e.message+"): showing the last data."));}}
render(JSON.parse(document.getElementById("status-data").textContent),false);
refresh();setInterval(refresh,EVERY);
})();
</script></body></html>
"##;

/// One failover-related event a status page lists.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusEvent {
    /// When (Unix seconds).
    pub at: u64,
    /// What happened, e.g. `failover`, `failback`, `pair-unreachable`.
    pub kind: &'static str,
    /// The region it concerns.
    pub region: String,
    /// One line for people.
    pub message: String,
}

/// The most recent events of a status page, oldest first, at most `capacity` of them.
#[derive(Debug)]
pub struct EventLog {
    capacity: usize,
    events: std::sync::Mutex<std::collections::VecDeque<StatusEvent>>,
}

impl EventLog {
    /// An empty log keeping the `capacity` most recent events.
    pub fn new(capacity: usize) -> EventLog {
        EventLog {
            capacity: capacity.max(1),
            events: Default::default(),
        }
    }

    /// Records an event now, dropping the oldest when full.
    pub fn push(&self, kind: &'static str, region: String, message: String) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut q = self.events.lock().expect("events lock");
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(StatusEvent {
            at,
            kind,
            region,
            message,
        });
    }

    /// The events, oldest first.
    pub fn list(&self) -> Vec<StatusEvent> {
        self.events
            .lock()
            .expect("events lock")
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html_scripts_get_json_and_format_decides() {
        assert!(!status_wants_html(None, None), "no Accept: JSON");
        assert!(!status_wants_html(Some("*/*"), None));
        let browser = Some("text/html,application/xhtml+xml,*/*;q=0.8");
        assert!(status_wants_html(browser, None));
        assert!(!status_wants_html(browser, Some("json")));
        assert!(status_wants_html(None, Some("HTML")));
    }

    #[test]
    fn embedded_json_cannot_close_the_script_and_stays_json() {
        let v = serde_json::json!({"kind": "region", "region": "</script><script>alert(1)</script> & <!--"});
        let page = status_page_html("t<b>", &v, "/status.json");
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "only the page's own two"
        );
        assert!(!page.contains("<!--"));
        assert!(page.contains("<title>t&lt;b&gt;</title>"));
        let start = page.find("type=\"application/json\">").unwrap() + 24;
        let end = start + page[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(back, v);
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external assets"
        );
    }
}
