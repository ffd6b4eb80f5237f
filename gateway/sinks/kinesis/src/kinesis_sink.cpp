#include "tidegate/sinks/kinesis_sink.h"

#include <utility>
// (utility first: Boost 1.74's asio/awaitable.hpp uses std::exchange)
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tidegate/proto/envelope.h"
#include "tidegate/proto/json.h"

namespace tidegate::sinks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct KinesisSink::Impl {
  KinesisSinkOptions opts;
  bool tls = true;
  std::string host;
  std::string port = "443";
  std::optional<asio::ssl::context> ssl_ctx;

  void parse_endpoint() {
    std::string e = opts.endpoint.empty() ? "https://kinesis." + opts.region + ".amazonaws.com" : opts.endpoint;
    if (e.rfind("https://", 0) == 0) {
      e = e.substr(8);
    } else if (e.rfind("http://", 0) == 0) {
      tls = false;
      port = "80";
      e = e.substr(7);
    } else {
      throw std::invalid_argument("endpoint must start with http:// or https://: " + opts.endpoint);
    }
    if (!e.empty() && e.back() == '/') e.pop_back();
    const auto colon = e.rfind(':');
    host = e.substr(0, colon);
    if (colon != std::string::npos) port = e.substr(colon + 1);
    if (host.empty()) throw std::invalid_argument("endpoint has no host: " + opts.endpoint);
  }

  std::string url() const { return std::string(tls ? "https://" : "http://") + host + ":" + port; }

  // One POST; returns the HTTP status and body, or throws on a network error.
  std::pair<int, std::string> post(const std::string& body) {
    const std::string amz_date = sigv4::amz_date_now();
    const std::string host_header = (port == (tls ? "443" : "80")) ? host : host + ":" + port;
    sigv4::Request req;
    req.method = "POST";
    req.payload = body;
    req.headers = {{"host", host_header},
                   {"content-type", "application/x-amz-json-1.1"},
                   {"x-amz-date", amz_date},
                   {"x-amz-target", "Kinesis_20131202.PutRecords"}};
    if (!opts.credentials.session_token.empty()) {
      req.headers.emplace_back("x-amz-security-token", opts.credentials.session_token);
    }
    const auto signature = sigv4::sign(req, opts.credentials, opts.region, "kinesis", amz_date);

    http::request<http::string_body> request{http::verb::post, "/", 11};
    for (const auto& [name, value] : req.headers) request.set(name, value);
    request.set(http::field::authorization, signature.authorization);
    request.set(http::field::user_agent, "tidegate");
    request.body() = body;
    request.prepare_payload();

    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    beast::error_code failure;
    auto check = [&](beast::error_code ec, const char* what) {
      if (ec && !failure) failure = ec;
      if (ec) throw beast::system_error(ec, what);
    };
    const auto results = resolver.resolve(host, port);
    if (tls) {
      if (!ssl_ctx) {
        ssl_ctx.emplace(asio::ssl::context::tls_client);
        if (opts.ca_file.empty()) {
          ssl_ctx->set_default_verify_paths();
        } else {
          ssl_ctx->load_verify_file(opts.ca_file);
        }
        ssl_ctx->set_verify_mode(asio::ssl::verify_peer);
      }
      beast::ssl_stream<beast::tcp_stream> stream(io, *ssl_ctx);
      stream.set_verify_callback(asio::ssl::host_name_verification(host));
      SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(host.c_str()));
      beast::get_lowest_layer(stream).expires_after(opts.timeout);
      beast::get_lowest_layer(stream).async_connect(results, [&](beast::error_code ec, auto) {
        if (ec) return check(ec, "connect");
        stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec2) {
          if (ec2) return check(ec2, "TLS handshake");
          http::async_write(stream, request, [&](beast::error_code ec3, std::size_t) {
            if (ec3) return check(ec3, "write");
            http::async_read(stream, buffer, response, [&](beast::error_code ec4, std::size_t) { check(ec4, "read"); });
          });
        });
      });
      io.run();
    } else {
      beast::tcp_stream stream(io);
      stream.expires_after(opts.timeout);
      stream.async_connect(results, [&](beast::error_code ec, auto) {
        if (ec) return check(ec, "connect");
        http::async_write(stream, request, [&](beast::error_code ec3, std::size_t) {
          if (ec3) return check(ec3, "write");
          http::async_read(stream, buffer, response, [&](beast::error_code ec4, std::size_t) { check(ec4, "read"); });
        });
      });
      io.run();
    }
    return {response.result_int(), response.body()};
  }
};

KinesisSink::KinesisSink(KinesisSinkOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->parse_endpoint();
}

KinesisSink::~KinesisSink() = default;

const std::string& KinesisSink::name() const { return impl_->opts.name; }

forward::SinkLimits KinesisSink::limits() const {
  // PutRecords: 500 records and 5 MiB per call, 1 MiB per record (data and
  // partition key together). Leave room for the JSON framing and base64.
  forward::SinkLimits l;
  l.max_records = 500;
  l.max_bytes = 3u << 20;
  l.max_record_bytes = 700u << 10;
  return l;
}

std::string KinesisSink::describe() const {
  return "Kinesis stream " + impl_->opts.stream + " at " + impl_->url();
}

std::string KinesisSink::put_records_body(const std::vector<buffer::Record>& batch) const {
  const auto& o = impl_->opts;
  std::string body = "{\"StreamName\":" + proto::json::quote(o.stream) + ",\"Records\":[";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& r = batch[i];
    const std::string data = o.data == KinesisData::kEnvelope ? proto::record_json(r, o.gateway_id) : r.payload;
    // Kinesis needs 1 to 256 characters of partition key.
    std::string key = r.partition_key.empty() ? r.source : r.partition_key;
    if (key.empty()) key = "tidegate";
    if (key.size() > 256) key.resize(256);
    if (i > 0) body += ',';
    body += "{\"Data\":\"" + proto::json::base64(data) + "\",\"PartitionKey\":" + proto::json::quote(key) + "}";
  }
  body += "]}";
  return body;
}

forward::SendResult KinesisSink::interpret(int status, const std::string& body, std::size_t records) const {
  forward::SendResult result;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (status == 200) {
    if (doc.is_discarded() || !doc.contains("Records") || !doc["Records"].is_array() ||
        doc["Records"].size() != records) {
      result.batch = forward::Outcome::kRetry;
      result.error = "PutRecords answered 200 with an unexpected body";
      return result;
    }
    const auto failed = doc.value("FailedRecordCount", 0);
    if (failed == 0) return result;
    result.per_record.assign(records, forward::Outcome::kOk);
    for (std::size_t i = 0; i < records; ++i) {
      const auto& r = doc["Records"][i];
      if (!r.contains("ErrorCode")) continue;
      // Both documented per-record errors are transient.
      const std::string code = r["ErrorCode"].get<std::string>();
      result.per_record[i] = forward::Outcome::kRetry;
      if (code == "ProvisionedThroughputExceededException") result.throttled = true;
      if (result.error.empty()) result.error = code + ": " + r.value("ErrorMessage", "");
    }
    result.error = std::to_string(failed) + " of " + std::to_string(records) + " records failed (" + result.error + ")";
    return result;
  }
  // The whole call failed. Nothing here is the records' fault (sizes were
  // checked before sending), so everything is retried; throttling also
  // slows down.
  const std::string type = doc.is_discarded() ? "" : doc.value("__type", "");
  const std::string message = doc.is_discarded() ? body.substr(0, 200) : doc.value("message", doc.value("Message", ""));
  result.batch = forward::Outcome::kRetry;
  result.throttled = type.find("ProvisionedThroughputExceeded") != std::string::npos ||
                     type.find("LimitExceeded") != std::string::npos || type.find("Throttling") != std::string::npos ||
                     status == 429;
  result.error = "HTTP " + std::to_string(status) + (type.empty() ? "" : " " + type) +
                 (message.empty() ? "" : ": " + message);
  return result;
}

forward::SendResult KinesisSink::send(const std::vector<buffer::Record>& batch) {
  forward::SendResult result;
  if (batch.empty()) return result;
  try {
    const auto [status, body] = impl_->post(put_records_body(batch));
    return interpret(status, body, batch.size());
  } catch (const std::exception& e) {
    result.batch = forward::Outcome::kRetry;
    result.error = std::string("PutRecords to ") + impl_->url() + ": " + e.what();
    return result;
  }
}

}  // namespace tidegate::sinks
