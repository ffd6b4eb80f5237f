#include "tidegate/sinks/http_sink.h"

#include <zlib.h>

#include <optional>
#include <stdexcept>

#include "tidegate/net/http_client.h"
#include "tidegate/proto/convert.h"
#include "tidegate/proto/envelope.h"

namespace tidegate::sinks {

namespace {

// windowBits 15 + 16 selects the gzip wrapper (zlib manual, deflateInit2).
constexpr int kGzipWindow = 15 + 16;

}  // namespace

std::string gzip_compress(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindow, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

std::string gzip_decompress(const std::string& data) {
  z_stream z{};
  if (inflateInit2(&z, kGzipWindow) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char chunk[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(chunk, sizeof chunk - z.avail_out);
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("not a complete gzip stream");
  return out;
}

struct HttpSink::Impl {
  HttpSinkOptions opts;
  std::optional<net::HttpClient> client;

  std::string encode(const std::vector<buffer::Record>& batch) const {
    if (opts.format == HttpFormat::kProtobuf) {
      return proto::make_batch(opts.gateway_id, 0, batch).SerializeAsString();
    }
    std::string out;
    for (const auto& r : batch) {
      proto::append_record_json(out, r, opts.gateway_id);
      out += '\n';
    }
    return out;
  }
};

HttpSink::HttpSink(HttpSinkOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(options);
  impl_->client.emplace(net::Url::parse(impl_->opts.url), impl_->opts.timeout, impl_->opts.ca_file);
}

HttpSink::~HttpSink() = default;

const std::string& HttpSink::name() const { return impl_->opts.name; }

forward::SinkLimits HttpSink::limits() const {
  forward::SinkLimits l;
  l.max_records = kMaxBatch;
  l.max_bytes = impl_->opts.max_batch_bytes;
  l.max_record_bytes = impl_->opts.max_batch_bytes;
  return l;
}

std::string HttpSink::describe() const {
  return "HTTP endpoint " + impl_->client->url().text() +
         (impl_->opts.format == HttpFormat::kProtobuf ? " (protobuf" : " (JSON lines") +
         (impl_->opts.gzip ? ", gzip)" : ")");
}

forward::SendResult HttpSink::send(const std::vector<buffer::Record>& batch) {
  forward::SendResult result;
  if (batch.empty()) return result;
  const auto& o = impl_->opts;
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("content-type", o.format == HttpFormat::kProtobuf ? "application/x-protobuf; messageType=tidegate.v1.Batch"
                                                                          : "application/x-ndjson");
  if (!o.bearer_token.empty()) headers.emplace_back("authorization", "Bearer " + o.bearer_token);
  std::string body = impl_->encode(batch);
  if (o.gzip) {
    body = gzip_compress(body);
    headers.emplace_back("content-encoding", "gzip");
  }
  net::HttpResponse response;
  try {
    response = impl_->client->post(headers, body);
  } catch (const std::exception& e) {
    result.batch = forward::Outcome::kRetry;
    result.error = e.what();
    return result;
  }
  const int s = response.status;
  if (s >= 200 && s < 300) return result;
  result.error = "HTTP " + std::to_string(s) + (response.body.empty() ? "" : ": " + response.body.substr(0, 200));
  const bool permanent = s >= 400 && s < 500 && s != 401 && s != 403 && s != 404 && s != 408 && s != 429;
  result.batch = permanent ? forward::Outcome::kReject : forward::Outcome::kRetry;
  result.throttled = s == 429 || s == 503;
  return result;
}

}  // namespace tidegate::sinks
