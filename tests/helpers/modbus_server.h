// A real Modbus TCP server for tests, on libmodbus (Debian's libmodbus-dev):
// its own implementation of the protocol, holding the values a test puts
// in, on a loopback port of its own. It can refuse addresses inside its
// tables (exception 2, as devices with gaps in their maps do), stay silent
// (accept, never answer), and counts the requests it got.
#pragma once

#include <modbus.h>
#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tidegate::testing {

class ModbusServer {
 public:
  explicit ModbusServer(std::uint16_t port, bool silent = false) : port_(port), silent_(silent) {
    mapping_ = modbus_mapping_new_start_address(0, 1000, 0, 1000, 0, 1000, 0, 1000);
    ctx_ = modbus_new_tcp("127.0.0.1", port);
    listen_fd_ = modbus_tcp_listen(ctx_, 32);
    if (listen_fd_ < 0) throw std::runtime_error("modbus_tcp_listen failed");
    thread_ = std::thread([this] { serve(); });
  }
  ~ModbusServer() {
    stop_ = true;
    thread_.join();
    for (const int fd : clients_) ::close(fd);
    ::close(listen_fd_);
    modbus_free(ctx_);
    modbus_mapping_free(mapping_);
  }
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  std::uint16_t port() const { return port_; }
  // Values, set before or while polling.
  void holding(std::uint16_t address, std::vector<std::uint16_t> words) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < words.size(); ++i) mapping_->tab_registers[address + i] = words[i];
  }
  void input(std::uint16_t address, std::vector<std::uint16_t> words) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < words.size(); ++i) mapping_->tab_input_registers[address + i] = words[i];
  }
  void coil(std::uint16_t address, bool on) {
    std::lock_guard lock(mu_);
    mapping_->tab_bits[address] = on ? 1 : 0;
  }
  // Holding registers a read may not touch: exception 2.
  void hole(std::uint16_t address) {
    std::lock_guard lock(mu_);
    holes_.insert(address);
  }
  std::uint64_t requests() const { return requests_.load(); }

 private:
  void serve() {
    std::uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!stop_) {
      fd_set set;
      FD_ZERO(&set);
      FD_SET(listen_fd_, &set);
      int max_fd = listen_fd_;
      for (const int fd : clients_) {
        FD_SET(fd, &set);
        max_fd = std::max(max_fd, fd);
      }
      timeval tv{0, 20'000};
      if (::select(max_fd + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
      if (FD_ISSET(listen_fd_, &set)) {
        int s = listen_fd_;
        const int fd = modbus_tcp_accept(ctx_, &s);
        if (fd >= 0) clients_.insert(fd);
      }
      for (auto it = clients_.begin(); it != clients_.end();) {
        const int fd = *it;
        if (!FD_ISSET(fd, &set)) {
          ++it;
          continue;
        }
        modbus_set_socket(ctx_, fd);
        const int n = modbus_receive(ctx_, query);
        if (n <= 0) {  // closed, or not Modbus
          ::close(fd);
          it = clients_.erase(it);
          continue;
        }
        requests_ += 1;
        ++it;
        if (silent_) continue;
        std::lock_guard lock(mu_);
        const int h = modbus_get_header_length(ctx_);
        const int function = query[h];
        const int address = query[h + 1] << 8 | query[h + 2];
        const int count = query[h + 3] << 8 | query[h + 4];
        bool refused = false;
        if (function == 3) {
          for (const auto a : holes_) refused = refused || (a >= address && a < address + count);
        }
        if (refused) {
          modbus_reply_exception(ctx_, query, MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
        } else {
          modbus_reply(ctx_, query, n, mapping_);
        }
      }
    }
  }

  std::uint16_t port_;
  bool silent_;
  modbus_t* ctx_ = nullptr;
  modbus_mapping_t* mapping_ = nullptr;
  int listen_fd_ = -1;
  std::set<int> clients_;
  std::mutex mu_;
  std::set<std::uint16_t> holes_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tidegate::testing

namespace tidegate::testing {

// A Modbus RTU device on libmodbus, on a serial port (in tests one end of a
// pseudo-terminal pair that socat makes), answering as unit `unit`.
class ModbusRtuServer {
 public:
  ModbusRtuServer(const std::string& device, int unit, int baud = 9600, char parity = 'E') {
    mapping_ = modbus_mapping_new_start_address(0, 100, 0, 100, 0, 100, 0, 100);
    ctx_ = modbus_new_rtu(device.c_str(), baud, parity, 8, 1);
    modbus_set_slave(ctx_, unit);
    if (modbus_connect(ctx_) != 0) throw std::runtime_error("cannot open " + device);
    modbus_set_indication_timeout(ctx_, 0, 50'000);  // the loop checks for a stop
    thread_ = std::thread([this] {
      std::uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];
      while (!stop_) {
        const int n = modbus_receive(ctx_, query);
        if (n <= 0) continue;  // a timeout, another unit's frame, or a bad CRC
        requests_ += 1;
        std::lock_guard lock(mu_);
        modbus_reply(ctx_, query, n, mapping_);
      }
    });
  }
  ~ModbusRtuServer() {
    stop_ = true;
    thread_.join();
    modbus_close(ctx_);
    modbus_free(ctx_);
    modbus_mapping_free(mapping_);
  }
  void holding(std::uint16_t address, std::vector<std::uint16_t> words) {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < words.size(); ++i) mapping_->tab_registers[address + i] = words[i];
  }
  std::uint64_t requests() const { return requests_.load(); }

 private:
  modbus_t* ctx_ = nullptr;
  modbus_mapping_t* mapping_ = nullptr;
  std::mutex mu_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tidegate::testing
